"""How the suite is shared between pytest-xdist's workers (``-n 2 --dist loadgroup`` in
pyproject.toml): a test module's tests stay together, so its module-scoped servers start
once; the browser tests are one group, in the order they were written, sharing one
JupyterLab and one Chromium. They are collected first, so one worker starts on them while
the other runs the rest. Both conftest.py files register this hook (either folder may be
run alone); marking an item twice names the same group."""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        group = "browser" if path.startswith("ui-tests/") else path
        item.add_marker(pytest.mark.xdist_group(group))
