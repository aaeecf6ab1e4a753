"""cellops.widgets in JupyterLab: a ModelCard registered with a click, then Compare.

The whole path of issue 4 as a new user takes it: autolog on, two versions registered
with cellops.register, a third with the card's Register button, the card's link into
the sidebar, and a comparison of the three.
"""

from __future__ import annotations

from conftest import Lab
from playwright.sync_api import expect
from test_sidebar import contrast, contrast_colours

TRAIN = (
    "import cellops\n"
    "cellops.autolog()\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_iris(return_X_y=True)\n"
    "model = LogisticRegression(max_iter=300).fit(X, y)\n"
    "cellops.log_metrics({'accuracy': model.score(X, y)})"
)
NAME = "card-iris"


def test_register_from_a_model_card_then_compare_versions(lab: Lab) -> None:
    lab.new_notebook()
    lab.run_cell(0, TRAIN, 1)
    lab.run_cell(1, f"cellops.register(model, '{NAME}').version", 2)
    lab.run_cell(2, f"cellops.register(model, '{NAME}', alias='champion').version", 3)
    expect(lab.output(2)).to_have_text("2")
    lab.run_cell(
        3, f"from cellops.widgets import ModelCard, Compare\nModelCard(model, name='{NAME}')", 4
    )

    card = lab.output(3).locator(".cellops-card")
    summary = card.locator(".cellops-card-summary")
    expect(summary).to_contain_text("LogisticRegression")
    expect(summary).to_contain_text("max_iter=300")
    expect(summary).to_contain_text("accuracy")
    expect(summary).to_contain_text("ndarray float64 4 columns")
    card.locator(".cellops-card-alias-field input").fill("staging")
    card.locator("button.cellops-card-register").click()

    done = card.locator(".cellops-card-done")
    expect(done).to_contain_text(f"Registered {NAME} version 3")
    expect(done.locator(".cellops-card-alias")).to_have_text(["staging"])
    lab.screenshot("registered")

    # The version points at the cell that showed the card, not at the click.
    v3 = lab.server.api.wait_for(
        f"models/{NAME}/versions/3", lambda b: b["lineage"]["execution_id"]
    )
    execution = lab.server.api.cellops(f"executions/{v3['lineage']['execution_id']}")
    assert execution["code"].endswith(f"ModelCard(model, name='{NAME}')")
    assert v3["aliases"] == ["staging"] and 0.9 < v3["metrics"]["accuracy"] <= 1.0
    assert v3["signature"]["shape"] == [None, 4]

    # The card's link opens the sidebar on that version.
    link = done.locator(".cellops-card-open")
    expect(link).to_have_css("text-decoration-line", "underline")  # it reads as a link
    link.click()
    expect(lab.sidebar).to_be_visible()
    expect(lab.page.locator(".jp-Dialog")).to_have_count(0)  # no "Run Command?" question
    expect(lab.sidebar.locator(".cellops-model-version")).to_have_count(3)
    focused = lab.sidebar.locator(".cellops-model-version-focused")
    expect(focused).to_have_attribute("data-version", "3")
    expect(focused).to_be_in_viewport()
    expect(focused.locator(".cellops-model-signature")).to_have_text(
        "Input: ndarray · float64 · 4 columns"
    )
    expect(focused.locator(".cellops-model-data").first).to_contain_text(
        "Trained on X 150\u00d74 float64 · sha256:"
    )
    lab.screenshot("opened-in-sidebar")

    # Compare the three versions and plot another metric.
    lab.run_cell(4, f"Compare('{NAME}')", 5)
    compare = lab.output(4).locator(".cellops-compare")
    expect(compare.locator(".cellops-compare-table thead th")).to_have_text(
        ["", f"{NAME} v1", f"{NAME} v2 (champion)", f"{NAME} v3 (staging)"]
    )
    # The chart is a Vega-Lite spec drawn by JupyterLab's renderer: one point a version.
    chart = compare.locator(".cellops-compare-plot .jp-RenderedVegaLite svg.marks")
    expect(chart.locator(".mark-symbol path")).to_have_count(3)
    expect(chart.locator(".role-axis-title text")).to_contain_text(["accuracy"])
    compare.locator(".cellops-compare-metric select").select_option("training_score")
    expect(chart.locator(".role-axis-title text")).to_contain_text(["training_score"])
    expect(chart.locator(".mark-symbol path")).to_have_count(3)

    lab.set_theme("JupyterLab Dark")
    try:
        for element in (
            summary.locator("td").first,
            done,
            compare.locator(".cellops-compare-table td").first,
        ):
            fg, bg = contrast_colours(element)
            assert contrast(fg, bg) >= 4.5, (fg, bg)
        compare.scroll_into_view_if_needed()
        lab.screenshot("dark")
    finally:
        lab.set_theme("JupyterLab Light")
