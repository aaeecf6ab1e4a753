"""A metric logged at steps is charted in the execution detail by JupyterLab's own
Vega-Lite renderer, and logged params read as Python literals, exactly as the Compare
widget shows them (``cellops.formatting.format_param``, tests/test_charts.py).
"""

from __future__ import annotations

import sys

from conftest import REPO, Lab
from playwright.sync_api import Locator, expect
from test_sidebar import contrast

sys.path.insert(0, str(REPO / "widgets"))
from cellops.formatting import format_param

PARAMS = {"solver": "adam", "note": "it's", "early": True, "seed": None, "alpha": 1e-7, "C": 0.5}
CELL = (
    "import cellops\n"
    f"cellops.log_params({PARAMS!r})\n"
    # One line: the editor would indent the line after a `for`.
    "_ = [cellops.log_metrics({'accuracy': a}, step=i) for i, a in enumerate([0.61, 0.83, 0.9])]\n"
    "cellops.log_metrics({'final': 1.0})\n"
    "cellops.flush(10)"
)


def test_logged_steps_are_charted_and_params_read_as_python(lab: Lab) -> None:
    lab.new_notebook()
    lab.run_cell(0, CELL, 1)
    lab.open_sidebar()
    timeline = lab.open_run(0)
    timeline.locator(".cellops-execution").first.click()
    detail = lab.sidebar.locator(".cellops-execution-detail")

    # One chart: accuracy has three steps, final only one value.
    charts = detail.locator(".cellops-detail-charts .cellops-metric-chart")
    expect(charts).to_have_count(1)
    chart = charts.first
    expect(chart).to_have_attribute("data-metric", "accuracy")
    # Drawn by the Vega renderer (SVG): a line and one point per step.
    drawn = chart.locator(".jp-RenderedVegaLite svg.marks")
    expect(drawn).to_be_visible()
    expect(drawn.locator(".mark-line path")).to_have_count(1)
    expect(drawn.locator(".mark-symbol path")).to_have_count(3)
    expect(drawn).to_contain_text("accuracy")  # the y axis title
    labels = drawn.locator(".role-axis-label text").evaluate_all("ts => ts.map(t => t.textContent)")
    assert {"0", "1", "2"} <= set(labels) and "0.5" not in labels  # whole steps only
    box = drawn.bounding_box()
    sidebar_box = lab.sidebar.bounding_box()
    assert box and sidebar_box and box["width"] <= sidebar_box["width"]  # fits the sidebar
    chart.scroll_into_view_if_needed()
    lab.screenshot("chart")

    # Params: the notation of the Compare widget, value by value.
    params = detail.locator(".cellops-detail-params")
    keys = params.locator("dt").all_inner_texts()
    values = dict(zip(keys, params.locator("dd").all_inner_texts(), strict=True))
    assert values == {k: format_param(v) for k, v in PARAMS.items()}
    assert values["solver"] == "'adam'" and values["seed"] == "None"

    # The Compare widget charts the same execution with the same spec: same axes, points.
    execution = timeline.locator(".cellops-execution").first.get_attribute("data-execution-id")
    lab.run_cell(1, f"from cellops.widgets import Compare\nCompare([{execution}])", 2)
    widget = lab.output(1).locator(".cellops-compare-plot .jp-RenderedVegaLite svg.marks")
    expect(widget.locator(".mark-symbol path")).to_have_count(3)
    assert (
        points(widget)
        == points(drawn)
        == ["step: 0; accuracy: 0.61", "step: 1; accuracy: 0.83", "step: 2; accuracy: 0.9"]
    )
    assert titles(widget) == titles(drawn) == ["step", "accuracy"]

    # Axis labels stay readable in both themes (the chart has no background of its own).
    label = drawn.locator(".role-axis-label text").first
    assert contrast(*svg_text_colours(label)) >= 4.5
    lab.set_theme("JupyterLab Dark")
    try:
        assert contrast(*svg_text_colours(label)) >= 4.5
        chart.scroll_into_view_if_needed()
        lab.screenshot("chart-dark")
    finally:
        lab.set_theme("JupyterLab Light")


def svg_text_colours(text: Locator) -> tuple[list[float], list[float]]:
    """An SVG text's fill and the first opaque background behind it (rgb 0-255)."""
    return text.evaluate(
        """el => {
            const rgb = s => s.match(/[\\d.]+/g).map(Number);
            const fg = rgb(getComputedStyle(el).fill);
            for (let n = el; n; n = n.parentElement) {
                const bg = rgb(getComputedStyle(n).backgroundColor);
                if (bg.length < 4 || bg[3] > 0.5) return [fg, bg.slice(0, 3)];
            }
            return [fg, [255, 255, 255]];
        }"""
    )


def points(chart: Locator) -> list[str]:
    """What the renderer says of each point (its aria-label), less the series name."""
    labels = chart.locator(".mark-symbol path").evaluate_all(
        "ps => ps.map(p => p.getAttribute('aria-label'))"
    )
    return [
        "; ".join(p for p in label.split("; ") if not p.startswith("version")) for label in labels
    ]


def titles(chart: Locator) -> list[str]:
    return chart.locator(".role-axis-title text").evaluate_all("ts => ts.map(t => t.textContent)")
