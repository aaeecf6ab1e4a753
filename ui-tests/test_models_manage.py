"""Managing models in the sidebar's Models tab: who registered a version, the alias dialog's
rule, confirming an alias move, archive / delete, and the lineage notebook opened in Lab."""

from __future__ import annotations

import re
import uuid

import nbformat
from conftest import Lab
from playwright.sync_api import Request, expect
from test_models_tab import TRAIN, open_a_notebook, register_versions

API = "cellops/api/v1"
RULE = "1-64 letters, digits, '_' or '-', starting with a letter"


def show_model(lab: Lab, model: str) -> None:
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("models")
    sidebar.locator(f".cellops-model[data-model='{model}']").click()
    expect(sidebar.locator(".cellops-model-title")).to_have_text(model)


def test_alias_dialog_checks_the_name_and_a_move_is_confirmed(lab: Lab) -> None:
    api = lab.server.api
    model = f"manage-{uuid.uuid4().hex[:6]}"
    register_versions(api, model, 2)
    r = api.request("PUT", f"{API}/models/{model}/aliases/champion", json={"version": 1})
    assert r.status_code == 200, r.text
    v1 = api.cellops(f"models/{model}/versions/1")
    assert v1["created_by"]
    alias_requests: list[str] = []

    def note(request: Request) -> None:
        if "/aliases/" in request.url and request.method == "PUT":
            alias_requests.append(request.url)

    lab.page.on("request", note)
    open_a_notebook(lab)
    show_model(lab, model)
    sidebar = lab.sidebar

    # Who registered each version, and when.
    row1 = sidebar.locator(".cellops-model-version[data-version='1']")
    expect(row1.locator(".cellops-model-version-author")).to_have_text(f"by {v1['created_by']}")
    expect(row1.locator("time.cellops-model-version-created")).to_have_attribute(
        "datetime", v1["created_at"]
    )

    # An invalid name: OK disabled, the rule shown, Enter does nothing, no request.
    row2 = sidebar.locator(".cellops-model-version[data-version='2']")
    row2.locator(".cellops-set-alias").click()
    dialog = lab.page.locator(".jp-Dialog")
    ok = dialog.locator("button.jp-mod-accept")
    expect(dialog.locator(".cellops-alias-rule")).to_contain_text(RULE)
    expect(ok).to_be_disabled()  # nothing typed yet
    field = dialog.locator("input")
    field.fill("2nd best")
    expect(ok).to_be_disabled()
    expect(dialog.locator(".cellops-alias-rule")).to_have_text(
        f'"2nd best" is not a valid alias: use {RULE}'
    )
    field.press("Enter")
    expect(dialog).to_be_visible()
    lab.screenshot("alias-invalid")
    assert alias_requests == []

    # A valid name that points elsewhere: confirm, naming where it is now.
    field.fill("champion")
    expect(ok).to_be_enabled()
    ok.click()
    confirm = lab.page.locator(".jp-Dialog", has_text="move it to v2?")
    expect(confirm.locator(".cellops-alias-move")).to_have_text(
        re.compile(
            rf"^champion is on v1 \(registered by {re.escape(v1['created_by'])}, .+\); "
            r"move it to v2\?$"
        )
    )
    lab.screenshot("alias-confirm")
    lab.accept(confirm, "Move")
    expect(row2.locator(".cellops-alias")).to_contain_text("champion")
    assert api.cellops(f"models/{model}")["aliases"] == {"champion": 2}
    assert len(alias_requests) == 1


def test_archive_and_delete_versions_from_the_sidebar(lab: Lab) -> None:
    api = lab.server.api
    model = f"tidy-{uuid.uuid4().hex[:6]}"
    register_versions(api, model, 3)
    api.request("PUT", f"{API}/models/{model}/aliases/prod", json={"version": 3})
    open_a_notebook(lab)
    show_model(lab, model)
    sidebar = lab.sidebar
    versions = sidebar.locator(".cellops-model-version")
    expect(versions).to_have_count(3)

    # The aliased version cannot go; the button says which alias holds it.
    row3 = sidebar.locator(".cellops-model-version[data-version='3']")
    expect(row3.locator(".cellops-delete")).to_be_disabled()
    expect(row3.locator(".cellops-archive")).to_have_attribute("title", re.compile("prod"))

    # Archive v1: hidden, and back with "Show archived", marked.
    sidebar.locator(".cellops-model-version[data-version='1'] .cellops-archive").click()
    expect(versions).to_have_count(2)
    sidebar.locator(".cellops-show-archived input").check()
    row1 = sidebar.locator(".cellops-model-version[data-version='1']")
    expect(row1.locator(".cellops-archived-badge")).to_have_text("archived")
    assert api.cellops(f"models/{model}/versions/1")["archived"] is True
    lab.screenshot("archived-shown")

    # Delete v2 after confirming.
    sidebar.locator(".cellops-model-version[data-version='2'] .cellops-delete").click()
    confirm = lab.page.locator(".jp-Dialog", has_text="version 2 of")
    lab.accept(confirm, "Delete")
    expect(sidebar.locator(".cellops-model-version[data-version='2']")).to_have_count(0)
    assert api.request("GET", f"{API}/models/{model}/versions/2").status_code == 404
    assert [
        v["version"] for v in api.cellops(f"models/{model}/versions", archived="true")["items"]
    ] == [3, 1]


def test_lineage_notebook_opens_as_a_notebook_tab(lab: Lab) -> None:
    model = f"lineage-{uuid.uuid4().hex[:6]}"
    trained_in = lab.new_notebook()
    lab.run_cell(0, TRAIN, 1)
    lab.run_cell(1, f"cellops.register(model, {model!r})", 2)
    show_model(lab, model)
    row = lab.sidebar.locator(".cellops-model-version[data-version='1']")
    opener = row.locator(".cellops-open-lineage")
    expect(opener).to_be_visible(timeout=20_000)  # once the execution is stored
    expect(row.locator(".cellops-download-lineage")).to_be_visible()  # still downloadable

    folder = trained_in.rpartition("/")[0]
    expected = f"{folder + '/' if folder else ''}{model}-v1-lineage.ipynb"
    opener.click()
    lab.page.wait_for_function(
        "p => window.jupyterapp.shell.currentWidget?.context?.path === p", arg=expected
    )
    expect(lab.page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_be_visible()
    expect(lab.page.locator(".jp-NotebookPanel:visible")).to_contain_text("LogisticRegression")
    saved = nbformat.read(lab.server.root / expected, as_version=4)
    assert any("LogisticRegression(max_iter=300)" in c.source for c in saved.cells)
    lab.screenshot("lineage-opened")

    # Again: a new file beside it, the first one untouched.
    before = (lab.server.root / expected).read_text()
    lab.page.evaluate(
        "p => { void window.jupyterapp.commands.execute('docmanager:open', {path: p}); }",
        trained_in,
    )
    lab.page.wait_for_function(
        "p => window.jupyterapp.shell.currentWidget?.context?.path === p", arg=trained_in
    )
    opener.click()
    second = expected.replace("-lineage.ipynb", "-lineage-1.ipynb")
    lab.page.wait_for_function(
        "p => window.jupyterapp.shell.currentWidget?.context?.path === p", arg=second
    )
    assert (lab.server.root / expected).read_text() == before
