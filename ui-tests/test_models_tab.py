"""The sidebar's Models tab over models registered from cells of a real notebook."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import nbformat
from conftest import KERNEL, Lab
from playwright.sync_api import expect

from tests.support import Api

API = "cellops/api/v1"

TRAIN = (
    "import cellops\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_iris(return_X_y=True)\n"
    "model = LogisticRegression(max_iter=300).fit(X, y)\n"
    "cellops.log_metrics({'train_accuracy': model.score(X, y)})"
)


def test_models_tab_shows_versions_metrics_lineage_and_moves_aliases(lab: Lab) -> None:
    trained_in = lab.new_notebook()
    lab.run_cell(0, TRAIN, 1)
    lab.run_cell(1, "first = cellops.register(model, 'ui-iris')", 2)
    lab.run_cell(2, "second = cellops.register(model, 'ui-iris', alias='champion')", 3)
    for i in range(3):  # no cell raised
        expect(lab.output(i).locator(".jp-RenderedText[data-mime-type*='stderr']")).to_have_count(0)

    sidebar = lab.open_sidebar()
    lab.sidebar_tab("models")
    row = sidebar.locator(".cellops-model[data-model='ui-iris']")
    expect(row).to_contain_text("v2")
    expect(row.locator(".cellops-alias")).to_have_text(["champion → v2"])
    row.click()
    versions = sidebar.locator(".cellops-model-version")
    expect(versions).to_have_count(2)
    newest = versions.first
    assert newest.get_attribute("data-version") == "2"
    expect(newest.locator(".cellops-model-metrics")).to_contain_text("train_accuracy")
    lab.screenshot("versions")

    # Lineage: version 1 came from the second cell of this notebook.
    oldest = sidebar.locator(".cellops-model-version[data-version='1']")
    expect(oldest.locator(".cellops-lineage-execution")).to_be_visible(timeout=20_000)
    oldest.locator(".cellops-lineage-execution").click()
    detail = sidebar.locator(".cellops-execution-detail")
    expect(detail.locator(".cellops-code")).to_have_text(
        "first = cellops.register(model, 'ui-iris')"
    )
    lab.screenshot("lineage-execution")

    # What a cell logged shows under its execution: the training cell's metric.
    sidebar.locator(".cellops-timeline .cellops-execution").first.click()
    expect(detail.locator(".cellops-code")).to_contain_text("LogisticRegression(max_iter=300)")
    metrics = detail.locator(".cellops-detail-metrics")
    expect(metrics.locator("dt")).to_have_text(["train_accuracy"])
    expect(metrics.locator("dd")).to_have_text([re.compile(r"^0\.9\d+$")])
    lab.screenshot("logged-values")

    # The minimal lineage notebook downloads as a valid .ipynb holding the training cell.
    lab.sidebar_tab("models")
    with lab.page.expect_download() as download:
        oldest.locator(".cellops-download-minimal").click()
    assert download.value.suggested_filename == "ui-iris-v1-minimal.ipynb"
    notebook = nbformat.reads(Path(download.value.path()).read_text(), as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["cellops"]["minimal"] is True
    assert any("LogisticRegression(max_iter=300)" in c.source for c in notebook.cells)

    # Move the alias to version 1 through the dialog; the API agrees.
    sidebar.locator(".cellops-model-version[data-version='1'] .cellops-set-alias").click()
    dialog = lab.page.locator(".jp-Dialog")
    dialog.locator("input").fill("champion")
    dialog.locator("button.jp-mod-accept").click()
    # Moving an alias asks first, saying where it points now.
    lab.accept(lab.page.locator(".jp-Dialog", has_text="move it to v1?"), "Move")
    expect(
        sidebar.locator(".cellops-model-version[data-version='1'] .cellops-alias")
    ).to_contain_text("champion")
    model = lab.server.api.cellops("models/ui-iris")
    assert model["aliases"] == {"champion": 1}
    lab.screenshot("alias-moved")

    # From another notebook, version 1's lineage opens the notebook it was trained in, on
    # the notebook version current when it was registered.
    v1 = lab.server.api.cellops("models/ui-iris/versions/1")
    assert v1["lineage"]["notebook"] == trained_in and v1["lineage"]["version_number"]
    other = lab.new_notebook()
    assert other != trained_in
    lab.open_sidebar()
    lab.sidebar_tab("models")
    oldest = sidebar.locator(".cellops-model-version[data-version='1']")
    expect(oldest.locator(".cellops-model-signature")).to_have_text("Input: 4 columns")
    oldest.locator(".cellops-lineage-version").click()
    expect(lab.page.locator(".jp-NotebookPanel:visible")).to_have_count(1)
    assert lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path") == (
        trained_in
    )
    focused = sidebar.locator(".cellops-version-focused")
    expect(focused).to_have_attribute("data-version-number", str(v1["lineage"]["version_number"]))
    expect(focused).to_be_in_viewport()
    lab.screenshot("lineage-notebook-version")


# -- live updates and the cellops:open-model command ------------------------------------------


def register_versions(api: Api, model: str, count: int) -> None:
    """Register ``count`` versions through the HTTP API, as another member's kernel would."""
    data = f"an artifact of {model}".encode()
    sha = hashlib.sha256(data).hexdigest()
    up = api.put_artifact(data)
    assert up.status_code in (200, 201), up.text
    for _ in range(count):
        body = {"artifact": sha, "flavor": "sklearn", "metrics": {"accuracy": 0.9}}
        r = api.request("POST", f"{API}/models/{model}/versions", json=body)
        assert r.status_code == 201, r.text


def open_a_notebook(lab: Lab) -> None:
    """The sidebar follows the current notebook: open one (from disk, no clicking)."""
    path = f"models-{uuid.uuid4().hex[:8]}.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": KERNEL,
        "language": "python",
    }
    nbformat.write(notebook, lab.server.root / path)
    lab.command("docmanager:open", {"path": path})
    lab.page.wait_for_function(
        "p => window.jupyterapp.shell.currentWidget?.context?.path === p", arg=path
    )


def test_models_tab_follows_registrations_without_a_click(lab: Lab) -> None:
    model = f"live-{uuid.uuid4().hex[:6]}"
    register_versions(lab.server.api, model, 1)
    open_a_notebook(lab)
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("models")
    sidebar.locator(f".cellops-model[data-model='{model}']").click()
    versions = sidebar.locator(".cellops-model-version")
    expect(versions).to_have_count(1)

    # Someone registers a version: the open list shows it within seconds, no click, no reload.
    register_versions(lab.server.api, model, 1)
    expect(sidebar.locator(".cellops-model-version[data-version='2']")).to_be_visible(timeout=5_000)
    expect(versions).to_have_count(2)
    # Aliases moved elsewhere show up too.
    r = lab.server.api.request("PUT", f"{API}/models/{model}/aliases/champion", json={"version": 2})
    assert r.status_code == 200, r.text
    expect(
        sidebar.locator(".cellops-model-version[data-version='2'] .cellops-alias")
    ).to_contain_text("champion", timeout=5_000)
    lab.screenshot("live-version")


def test_open_model_command_shows_the_version_marked(lab: Lab) -> None:
    model = f"card-{uuid.uuid4().hex[:6]}"
    register_versions(lab.server.api, model, 12)  # more than fit: the oldest is below the fold
    open_a_notebook(lab)
    execute = "args => window.jupyterapp.commands.execute('cellops:open-model', args)"

    # Bad arguments (a hand-edited link) do nothing, quietly.
    lab.page.evaluate(execute, {"name": 42})
    expect(lab.sidebar).to_be_hidden()

    lab.page.evaluate(execute, {"name": model, "version": 1})
    sidebar = lab.sidebar
    expect(sidebar).to_be_visible()
    expect(sidebar.locator("button.cellops-tab[data-tab='models']")).to_have_attribute(
        "aria-selected", "true"
    )
    expect(sidebar.locator(".cellops-model-title")).to_have_text(model)
    expect(sidebar.locator(".cellops-model-version")).to_have_count(12)
    row = sidebar.locator(".cellops-model-version[data-version='1']")
    expect(row).to_have_class(re.compile(r"\bcellops-model-version-focused\b"))
    expect(row).to_be_in_viewport()
    expect(sidebar.locator(".cellops-model-version-focused")).to_have_count(1)
    lab.screenshot("open-model")
