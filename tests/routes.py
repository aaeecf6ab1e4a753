"""Every concrete URL and method of the route table, for auth tests."""

from __future__ import annotations

import re

from cellops_server.api.routes import ROUTES

SAMPLE = {
    r"(\d+)": "1",
    r"(\d{1,9})": "1",
    r"([0-9a-f]{64})": "0" * 64,
    r"([^/]+)": "sample",
}


def concrete_routes(exclude: set[type] | None = None) -> list[tuple[str, str]]:
    out = []
    for pattern, handler in ROUTES:
        if exclude and handler in exclude:
            continue
        path = pattern
        for group, value in SAMPLE.items():
            path = path.replace(group, value)
        assert not re.search(r"[()\\]", path), f"add a sample value for {pattern}"
        for method in ("get", "post", "put", "patch", "delete"):
            if method in handler.__dict__:
                out.append((method.upper(), path.lstrip("/")))
    return out
