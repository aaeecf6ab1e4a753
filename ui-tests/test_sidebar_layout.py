"""What the sidebar says when nothing is recorded, and the Models tab with no notebook open.

The server holds the user's tracking settings (the settings editor syncs with it); the
tests change them through its API, as another tab would. Every test puts the defaults
back: the server is shared by the whole session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Lab
from playwright.sync_api import expect

from tests.support import JupyterServer

DEFAULTS = {"tracking": True, "exclude": [], "max_output_size": 10000}


def save_settings(jupyter: JupyterServer, **values: Any) -> None:
    body = {**DEFAULTS, **values}
    r = jupyter.api.request("PUT", "cellops/api/v1/settings", data=json.dumps(body))
    assert r.status_code == 200, r.text
    assert r.json() == body


@pytest.fixture
def settings(jupyter: JupyterServer) -> Iterator[None]:
    yield
    save_settings(jupyter)


def make_notebook(jupyter: JupyterServer, path: str) -> None:
    folder = path.rpartition("/")[0]
    if folder:
        r = jupyter.api.request("PUT", f"api/contents/{folder}", json={"type": "directory"})
        assert r.status_code in (200, 201), r.text
    body = {
        "type": "notebook",
        "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
    }
    r = jupyter.api.request("PUT", f"api/contents/{path}", json=body)
    assert r.status_code in (200, 201), r.text


def test_an_excluded_notebook_names_the_pattern_not_run_a_cell(
    lab: Lab, jupyter: JupyterServer, settings: None
) -> None:
    make_notebook(jupyter, "scratch/try.ipynb")
    make_notebook(jupyter, "kept.ipynb")
    save_settings(jupyter, exclude=["scratch/**"])
    lab.open("scratch/try.ipynb")
    status = jupyter.api.cellops("status", notebook="scratch/try.ipynb")
    assert (status["notebook_tracking"], status["excluded_by"]) == (False, "scratch/**")

    sidebar = lab.open_sidebar()
    info = sidebar.locator(".cellops-info[data-source='tracking']")
    expect(info).to_contain_text("This notebook is excluded from tracking (pattern scratch/**).")
    expect(info).to_contain_text('"Notebooks not to record"')  # where to change it
    expect(sidebar.get_by_text("Run a cell to start tracking", exact=True)).to_be_hidden()
    lab.screenshot("excluded")

    # A notebook outside the pattern is recorded: no such message there.
    lab.command("docmanager:open", {"path": "kept.ipynb"})
    expect(info).to_have_count(0)
    expect(sidebar.get_by_text("Run a cell to start tracking", exact=True)).to_be_visible()


def test_tracking_off_says_so_and_how_to_turn_it_on(
    lab: Lab, jupyter: JupyterServer, settings: None
) -> None:
    make_notebook(jupyter, "off.ipynb")
    lab.open("off.ipynb")
    sidebar = lab.open_sidebar()
    expect(sidebar.get_by_text("Run a cell to start tracking", exact=True)).to_be_visible()
    info = sidebar.locator(".cellops-info[data-source='tracking']")
    expect(info).to_have_count(0)

    # Switched off elsewhere (another tab, the API): the open panel says so at once.
    save_settings(jupyter, tracking=False)
    expect(info).to_contain_text("Tracking is off")
    expect(info).to_contain_text('"Record executed cells"')  # how to turn it on
    expect(sidebar.get_by_text("Run a cell to start tracking", exact=True)).to_be_hidden()
    lab.screenshot("tracking-off")

    save_settings(jupyter, tracking=True)
    expect(info).to_have_count(0)


def test_models_tab_works_with_no_notebook_open(lab: Lab, jupyter: JupyterServer) -> None:
    sidebar = lab.open_sidebar()  # a fresh workspace: no notebook
    waiting = sidebar.locator(".cellops-no-notebook")
    expect(waiting).to_contain_text("Open a notebook to see its history")
    lab.sidebar_tab("models")
    expect(waiting).to_be_hidden()
    # The team's models, as the API lists them (or the empty state saying how to register one).
    models = jupyter.api.cellops("models")["items"]
    listed = sidebar.locator(".cellops-models")
    if models:
        expect(listed.locator(f".cellops-model[data-model='{models[0]['name']}']")).to_be_visible()
    else:
        expect(listed).to_contain_text("No models yet")
    lab.screenshot("models-no-notebook")
    lab.sidebar_tab("runs")
    expect(waiting).to_be_visible()
