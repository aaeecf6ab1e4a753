"""The sidebar's Models tab over models registered from cells of a real notebook."""

from __future__ import annotations

from pathlib import Path

import nbformat
from conftest import Lab
from playwright.sync_api import expect

TRAIN = (
    "import cellops\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_iris(return_X_y=True)\n"
    "model = LogisticRegression(max_iter=300).fit(X, y)\n"
    "cellops.log_metrics({'train_accuracy': model.score(X, y)})"
)


def test_models_tab_shows_versions_metrics_lineage_and_moves_aliases(lab: Lab) -> None:
    lab.new_notebook()
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
    lab.accept(dialog, "Ok")
    expect(
        sidebar.locator(".cellops-model-version[data-version='1'] .cellops-alias")
    ).to_contain_text("champion")
    model = lab.server.api.cellops("models/ui-iris")
    assert model["aliases"] == {"champion": 1}
    lab.screenshot("alias-moved")
