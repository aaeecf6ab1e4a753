"""How fast the cellops sidebar shows a notebook's history, in a real browser.

A real ``jupyter lab`` with cellops and Debian's Chromium (Playwright). Two notebooks are
seeded into the store: one whose run has 1 execution, one whose run has 10,000.

1. Panel open → runs list rendered, p50 of 5 fresh page loads per notebook. Timed in the
   page (``performance.now()``) from activating the panel to its first run row. Baseline
   in the same page loads: the one request the panel needs (``GET runs``), fetched alone,
   so the ratio is what building the panel adds to the network round trip.
   Goals: ≤ 300 ms (1 execution) and ≤ 800 ms (10,000).
   Also: clicking the 10,000-execution run → first timeline rows shown.
2. Cell finished → its row in the open timeline. A cell is run with Shift+Enter; the page
   notes when the cell's prompt shows its execution count (the reply reached the browser)
   and when the new row appears in the panel. Also measured: when the record can be read
   from the REST API (the writer's share of the delay). Goal: p50 ≤ 500 ms.

    python benchmarks/sidebar.py [--quick]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
from common import banner, exit_code, goal, median, parse_args, print_table, stop_jupyter

CHROMIUM = os.environ.get("CELLOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

# In-page timers: activate a sidebar panel and wait (per animation frame) for a selector.
OPEN_PANEL = """async ([id, selector]) => {
    const app = window.jupyterapp;
    const t0 = performance.now();
    app.shell.activateById(id);
    while (!document.querySelector(selector)) {
        await new Promise(r => requestAnimationFrame(r));
        if (performance.now() - t0 > 20000) throw new Error('timed out waiting for ' + selector);
    }
    return performance.now() - t0;
}"""

# The baseline: the one request the panel cannot do without, timed alone from the page.
FETCH_RUNS = """async path => {
    const base = window.jupyterapp.serviceManager.serverSettings.baseUrl;
    const t0 = performance.now();
    const r = await fetch(base + 'cellops/api/v1/runs?limit=50&notebook=' + encodeURIComponent(path));
    await r.json();
    return performance.now() - t0;
}"""

CLICK_AND_WAIT = """async ([click, selector]) => {
    const t0 = performance.now();
    document.querySelector(click).click();
    while (!document.querySelector(selector)) {
        await new Promise(r => requestAnimationFrame(r));
        if (performance.now() - t0 > 20000) throw new Error('timed out waiting for ' + selector);
    }
    return performance.now() - t0;
}"""

# Watch the active cell's prompt, the timeline's rows and the REST API; resolve with the
# time each showed the new execution.
WATCH_ROW = """([path, count]) => ({done: new Promise((resolve, reject) => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cell = panel.content.activeCell;
    const base = window.jupyterapp.serviceManager.serverSettings.baseUrl;
    const t = {finished: null, row: null, api: null};
    const start = performance.now();
    const rows = () => document.querySelectorAll(
        '#cellops-sidebar .cellops-execution[data-status="ok"]').length;
    const done = () => t.finished !== null && t.row !== null && t.api !== null;
    const tick = () => {
        const now = performance.now();
        const prompt = cell.node.querySelector('.jp-InputPrompt')?.textContent ?? '';
        if (t.finished === null && prompt.includes('[' + count + ']')) t.finished = now;
        if (t.row === null && rows() >= count) t.row = now;
        if (done()) { resolve(t); return; }
        if (now - start > 20000) { reject(new Error(JSON.stringify(t))); return; }
        requestAnimationFrame(tick);
    };
    const poll = async () => {
        while (t.api === null && performance.now() - start < 20000) {
            const r = await fetch(base + 'cellops/api/v1/executions?limit=1&notebook=' +
                encodeURIComponent(path));
            if (r.ok) {
                const items = (await r.json()).items;
                if (items.length && items[0].code === 'x = ' + count && items[0].status === 'ok') {
                    t.api = performance.now();
                    return;
                }
            }
            await new Promise(res => setTimeout(res, 20));
        }
    };
    requestAnimationFrame(tick);
    void poll();
})})"""  # wrapped in an object: evaluate_handle would otherwise wait for the promise


def seed(server: Any, quick: bool) -> dict[str, int]:
    import nbformat
    from records import long_run, seed_store

    sizes = {"one.ipynb": 1, "big.ipynb": 2_000 if quick else 10_000}
    for name, n in sizes.items():
        (server.root / name).write_text(json.dumps(nbformat.v4.new_notebook()))
        seed_store(
            f"sqlite:///{server.home / 'cellops.db'}",
            str(server.home / "artifacts"),
            long_run(name, n, run_key=f"run-{name}"),
        )
    return sizes


def open_notebook(page: Any, server: Any, path: str) -> None:
    workspace = f"bench-{uuid.uuid4().hex[:8]}"
    page.goto(f"{server.url}/lab/workspaces/{workspace}/tree/{path}?reset")
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    page.wait_for_function(
        "p => window.jupyterapp.shell.currentWidget?.context?.path === p", arg=path
    )


def panel_open_times(page: Any, server: Any, path: str, trials: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"cellops": [], "fetch": [], "timeline": []}
    for _ in range(trials):
        open_notebook(page, server, path)
        page.wait_for_timeout(300)  # let start-up requests settle, as a person would
        out["fetch"].append(page.evaluate(FETCH_RUNS, path))
        out["cellops"].append(
            page.evaluate(OPEN_PANEL, ["cellops-sidebar", "#cellops-sidebar .cellops-run"])
        )
        out["timeline"].append(
            page.evaluate(
                CLICK_AND_WAIT,
                ["#cellops-sidebar .cellops-run", "#cellops-sidebar .cellops-execution"],
            )
        )
    return out


def row_latencies(page: Any, server: Any, cells: int) -> tuple[list[float], list[float]]:
    """(finished → row, finished → readable from the API) per cell, in ms."""
    path = f"live-{uuid.uuid4().hex[:6]}.ipynb"
    (server.root / path).write_text(json.dumps(_notebook()))
    open_notebook(page, server, path)
    page.wait_for_function(
        """() => {
            const k = window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel;
            return k?.connectionStatus === 'connected' && k?.status === 'idle';
        }"""
    )
    page.evaluate("() => window.jupyterapp.shell.activateById('cellops-sidebar')")
    to_row, to_api = [], []
    for i in range(1, cells + 1):
        page.locator(".jp-Notebook .jp-Cell").first.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.type(f"x = {i}")
        watcher = page.evaluate_handle(WATCH_ROW, [path, i])
        page.keyboard.press("Control+Enter")  # run in place
        if i == 1:  # the first run appears in the runs list: open its timeline
            page.locator("#cellops-sidebar .cellops-run").first.click()
        times = watcher.evaluate("w => w.done")
        to_row.append(times["row"] - times["finished"])
        to_api.append(times["api"] - times["finished"])
    return to_row[1:], to_api[1:]  # the first row needed a click on its run


def _notebook() -> dict[str, Any]:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(""))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    from playwright.sync_api import sync_playwright
    from support import JupyterServer

    trials = 3 if args.quick else 5
    cells = 5 if args.quick else 15
    banner("sidebar in the browser", args, trials=trials, cells=cells)
    tmp = Path(tempfile.mkdtemp(prefix="cellops-bench-sidebar-"))
    settings = tmp / "lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    ).write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    server = JupyterServer(
        tmp,
        app="lab",
        env={"JUPYTERLAB_SETTINGS_DIR": str(settings),
             "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")},
        extra_args=["--LabApp.expose_app_in_browser=True"],
    ).start()  # fmt: skip
    met: list[bool] = []
    try:
        sizes = seed(server, args.quick)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{server.url}/lab?token={server.token}")
            rows = []
            results = {}
            for name, n in sizes.items():
                t = panel_open_times(page, server, name, trials)
                results[n] = t
                rows.append([
                    f"{n:,} execution(s)", median(t["cellops"]), median(t["fetch"]),
                    median(t["cellops"]) / median(t["fetch"]), median(t["timeline"]),
                ])  # fmt: skip
            print(f"\npanel open → runs list rendered (ms, p50 of {trials} page loads)")
            print_table(
                ["active run", "panel", "GET runs alone (baseline)", "ratio", "run → timeline"],
                rows,
            )
            to_row, to_api = row_latencies(page, server, cells)
            print(f"\ncell finished → its row in the open panel (ms, {cells} cells)")
            print_table(
                ["", "p50", "max"],
                [
                    ["row shown in the panel", median(to_row), max(to_row)],
                    ["record readable from the API", median(to_api), max(to_api)],
                ],
            )
            browser.close()
        small, big = sizes.values()
        met.append(
            goal(
                "panel open, 1 execution, p50", median(results[small]["cellops"]), "<=", 300, " ms"
            )
        )
        met.append(
            goal(
                f"panel open, {big:,} executions, p50",
                median(results[big]["cellops"]),
                "<=",
                800,
                " ms",
            )
        )
        met.append(goal("finished → row, p50", median(to_row), "<=", 500, " ms"))
    finally:
        stop_jupyter(server)
    return exit_code(args, met)


if __name__ == "__main__":
    sys.exit(main())
