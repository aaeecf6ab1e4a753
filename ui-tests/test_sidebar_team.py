"""The sidebar of a team member's JupyterLab while the team backend stops and comes back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BENIGN_CONSOLE_ERRORS, ConsoleWatcher, Lab, member_lab
from playwright.sync_api import Browser, expect

from tests.postgres import fresh_postgres_database
from tests.support import JupyterServer, TeamBackend

# While the backend is down, the member's Jupyter server answers the panel's requests with
# 502 "team backend unreachable" (that is the point of the test), and Chromium logs every
# non-2xx answer as "Failed to load resource". Only that message, only here, is expected.
BACKEND_DOWN = re.compile(r"Failed to load resource: the server responded with a status of 502")


@pytest.fixture
def team_lab(tmp_path: Path) -> Iterator[tuple[TeamBackend, JupyterServer]]:
    """alice's JupyterLab on a team backend on PostgreSQL."""
    with fresh_postgres_database() as db_url, member_lab(tmp_path, db_url, "alice") as team:
        backend, lab, _ = team
        yield backend, lab


def test_panel_says_the_backend_is_unreachable_and_recovers(
    browser: Browser, team_lab: tuple[TeamBackend, JupyterServer]
) -> None:
    backend, server = team_lab
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    BENIGN_CONSOLE_ERRORS.append(BACKEND_DOWN)
    watcher = ConsoleWatcher(context)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/lab?token={server.token}")
        lab = Lab(page, server, "team-backend-down")
        lab.open()
        lab.new_notebook()
        sidebar = lab.open_sidebar()
        lab.run_cell(0, "first = 1", 1)
        expect(sidebar.locator(".cellops-run .cellops-run-executions")).to_have_text("1")
        expect(sidebar.locator(".cellops-run .cellops-run-user")).to_contain_text("alice")

        backend.stop()
        lab.run_cell(1, "second = 2", 2)  # recorded into the local spool meanwhile
        expect(sidebar.locator(".cellops-error")).to_contain_text("unreachable", timeout=30_000)
        status = page.locator(".cellops-status-item")
        expect(status).to_have_attribute("data-state", "spooling", timeout=30_000)
        lab.screenshot("backend-down")

        backend.start()
        expect(sidebar.locator(".cellops-error")).to_have_count(0, timeout=30_000)
        expect(sidebar.locator(".cellops-run .cellops-run-executions")).to_have_text(
            "2", timeout=30_000
        )
        expect(status).to_have_attribute("data-state", "on", timeout=30_000)
        lab.screenshot("backend-back")
        watcher.check("the backend went down and came back")
    finally:
        BENIGN_CONSOLE_ERRORS.remove(BACKEND_DOWN)
        context.close()
