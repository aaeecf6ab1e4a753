"""Runs people recognise and can find: labelled runs, a run view that opens at its newest
execution and tails new ones, filtering by a metric, and ticked runs compared side by side.

Each test drives a real JupyterLab in Chromium (real kernels, the real capture tap) and
saves screenshots of what it checked under ui-tests/artifacts/.
"""

from __future__ import annotations

from conftest import KERNEL, Lab
from playwright.sync_api import Locator, expect

LOG_CELL = (
    "import cellops\n"
    "cellops.log_params({{'alpha': {alpha}}})\n"
    "cellops.log_metrics({{'accuracy': {accuracy}}})\n"
    "assert cellops.flush()"
)


def run_code(lab: Lab, codes: list[str]) -> None:
    """Execute ``codes`` one after another on the notebook's kernel, over JupyterLab's own
    kernel connection (the websocket the tap watches), as fast as the kernel answers."""
    lab.page.evaluate(
        """async codes => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            for (const code of codes) {
                await kernel.requestExecute({code}).done;
            }
        }""",
        codes,
    )


def row_of(timeline: Locator, code: str) -> Locator:
    """The code of the execution row whose first line is exactly ``code``."""
    return timeline.locator(".cellops-execution .cellops-execution-code").get_by_text(
        code, exact=True
    )


def test_two_runs_are_labelled_filtered_and_compared(lab: Lab) -> None:
    lab.new_notebook()
    lab.run_cell(0, LOG_CELL.format(alpha=0.1, accuracy=0.8), 1)
    lab.restart_kernel()
    lab.run_cell(0, LOG_CELL.format(alpha=1, accuracy=0.95), 1, replace=True)
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("runs")
    runs = sidebar.locator(".cellops-run")
    expect(runs).to_have_count(2)
    newest, oldest = runs.nth(0), runs.nth(1)
    expect(newest.locator(".cellops-run-number")).to_have_text("#2")
    expect(newest.locator(".cellops-run-state")).to_have_text("active")
    expect(newest.locator(".cellops-run-duration")).to_contain_text("running for")
    expect(newest.locator(".cellops-run-kernel")).to_have_text(KERNEL)
    expect(oldest.locator(".cellops-run-number")).to_have_text("#1")
    expect(oldest.locator(".cellops-run-state")).to_have_text("ended")
    expect(oldest.locator(".cellops-run-duration")).to_contain_text("ran ")
    # One person ran this notebook: naming them on every row tells nothing apart.
    expect(newest.locator(".cellops-run-user")).to_be_hidden()
    lab.screenshot("labelled")

    search = sidebar.locator(".cellops-run-search-input")
    search.fill("accuracy>0.9")
    expect(runs).to_have_count(1)
    expect(runs.first.locator(".cellops-run-number")).to_have_text("#2")
    lab.screenshot("filtered")
    search.fill("accuracy>high")
    expect(sidebar.locator(".cellops-run-search-error")).to_contain_text("not a finite number")
    search.fill("")
    expect(runs).to_have_count(2)
    expect(sidebar.locator(".cellops-run-search-error")).to_be_hidden()

    sort = sidebar.locator(".cellops-run-sort")
    sort.select_option("metric:accuracy")  # lowest first
    expect(runs.nth(0).locator(".cellops-run-number")).to_have_text("#1")
    sort.select_option("-started")

    compare = sidebar.locator("button.cellops-run-compare")
    expect(compare).to_be_disabled()
    for i in range(2):
        runs.nth(i).locator(".cellops-run-pick").check()
    expect(sidebar.locator(".cellops-timeline")).to_be_hidden()  # ticking opens nothing
    compare.click()
    table = sidebar.locator(".cellops-compare-table")
    expect(table).to_be_visible()
    expect(table.locator("th.cellops-compare-run")).to_have_count(2)
    expect(table.locator("th.cellops-compare-run").nth(0)).to_contain_text("#1")
    expect(table.locator("th.cellops-compare-run").nth(1)).to_contain_text("#2")
    accuracy = table.locator("tr[data-section='metrics'][data-key='accuracy'] td")
    expect(accuracy).to_have_text(["0.8000", "0.9500"])
    alpha = table.locator("tr[data-section='params'][data-key='alpha']")
    expect(alpha.locator("td")).to_have_text(["0.1", "1"])
    expect(alpha).to_have_class("cellops-compare-row cellops-mod-differs")
    lab.screenshot("compared")
    sidebar.locator(".cellops-run-compare-view .cellops-back").click()
    expect(runs).to_have_count(2)


def test_run_view_opens_at_its_newest_execution_and_tails_new_ones(lab: Lab) -> None:
    lab.new_notebook()
    run_code(lab, [f"step = {i}" for i in range(1, 61)])
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("runs")
    expect(sidebar.locator(".cellops-run-executions").first).to_have_text("60")
    timeline = lab.open_run(0)
    expect(row_of(timeline, "step = 60")).to_be_in_viewport()
    expect(row_of(timeline, "step = 1")).to_have_count(0)  # virtualized, far above
    lab.screenshot("opened-at-newest")

    run_code(lab, ["step = 61"])  # at the bottom: the new row scrolls into sight
    expect(row_of(timeline, "step = 61")).to_be_in_viewport()

    timeline.evaluate("el => { el.scrollTop = 0; }")
    expect(row_of(timeline, "step = 1")).to_be_in_viewport()
    run_code(lab, ["step = 62", "step = 63"])
    jump = timeline.locator(".cellops-timeline-jump")
    expect(jump).to_have_text("2 new ↓")
    expect(row_of(timeline, "step = 1")).to_be_in_viewport()  # the reader stays put
    lab.screenshot("new-below")
    jump.click()
    expect(row_of(timeline, "step = 63")).to_be_in_viewport()
    expect(jump).to_be_hidden()
