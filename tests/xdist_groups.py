"""How the suite is shared between pytest-xdist's workers (``-n 2 --dist loadgroup`` in
pyproject.toml): a test module's tests stay together, so its module-scoped servers start
once; the browser tests are one group, in the order they were written, sharing one
JupyterLab and one Chromium. They are collected first, so one worker starts on them while
the other runs the rest. Both conftest.py files register this hook (either folder may be
run alone).

The group is marked as each item is collected (``pytest_itemcollected``), before any
``pytest_collection_modifyitems`` runs, where xdist appends it to the node id. (pytest 9.2
keeps node ids where xdist 3.8 cannot append to them: every test would be a group of its
own, so pyproject.toml keeps pytest below 9.1.)"""

from __future__ import annotations

import pytest


def pytest_itemcollected(item: pytest.Item) -> None:
    path = item.nodeid.split("::", 1)[0]
    group = "browser" if path.startswith("ui-tests/") else path
    item.add_marker(pytest.mark.xdist_group(group))
