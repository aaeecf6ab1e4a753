"""A comment posted by one team member → visible in another member's open sidebar.

Real processes on one PostgreSQL database: two `cellops serve` replicas (A and B), alice's
Jupyter server forwarding to A, and bob's JupyterLab twice: once on A (the same replica as
alice: one process delivers) and once on B (across replicas: PostgreSQL LISTEN/NOTIFY).
All three work in clones of one git repository, so `analysis.ipynb` is one notebook to
cellops. Debian's Chromium (Playwright) holds three pages: alice's, and bob's two with the
notebook open and the sidebar's Review tab shown.

Each comment is POSTed from alice's page (as her sidebar does: same origin, XSRF header);
both of bob's pages watch (MutationObserver) for its body in the Review tab. Times use one
clock (performance.timeOrigin + now, the same for every page of the browser), from just
before alice's request to the DOM change in bob's page. Baseline in the same run: the POST's
own round trip (alice's request answered). Warm-up comments first, then N measured ones.

Goals (issue 11): p50 ≤ 500 ms and p99 ≤ 1 s, through one replica and across two.

    python benchmarks/review_latency.py [--quick] [--strict] [-n N]
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
from common import (
    banner,
    exit_code,
    fresh_postgres_db,
    goal,
    median,
    parse_args,
    percentile,
    postgres_reason,
    print_table,
    skip,
    stop_jupyter,
    subprocess_env,
)
from team_lab import member_home, shared_repository  # tests/: clones of one repository

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]  # fmt: skip
NOTEBOOK = "analysis.ipynb"
CELL_IDS = ["load", "train", "evaluate"]
P50_MS, P99_MS = 500.0, 1000.0

# alice's page: POST a comment (as the sidebar does) and answer when it was sent/answered.
POST = """async ([notebook, cellId, body]) => {
    const base = window.jupyterapp
        ? window.jupyterapp.serviceManager.serverSettings.baseUrl : '/';
    const xsrf = (document.cookie.match(/(?:^|;\\s*)_xsrf=([^;]+)/) || [])[1] || '';
    const t0 = performance.timeOrigin + performance.now();
    const r = await fetch(base + 'cellops/api/v1/comments?notebook=' + encodeURIComponent(notebook), {
        method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf)},
        body: JSON.stringify({target: {kind: 'cell', notebook, cell_id: cellId}, body}),
    });
    const t1 = performance.timeOrigin + performance.now();
    if (r.status !== 201) throw new Error('POST /comments: ' + r.status + ' ' + await r.text());
    return {sent: t0, answered: t1};
}"""
# bob's page: resolve with the time a comment body containing `text` is in the sidebar.
WATCH = """text => {
    const now = () => performance.timeOrigin + performance.now();
    const sel = '#cellops-sidebar .cellops-comment-body';
    const seen = () => Array.from(document.querySelectorAll(sel))
        .some(e => (e.textContent || '').includes(text));
    const done = new Promise((resolve, reject) => {
        if (seen()) { resolve(now()); return; }
        const observer = new MutationObserver(() => {
            if (seen()) { observer.disconnect(); clearTimeout(timer); resolve(now()); }
        });
        const timer = setTimeout(() => { observer.disconnect(); resolve(null); }, 20000);
        observer.observe(document.body,
            {childList: true, subtree: true, attributes: true, characterData: true});
    });
    return {done};
}"""


def member_lab(tmp: Path, name: str, backend_url: str, token: str, origin: Path) -> Any:
    from support import JupyterServer

    home = tmp / name
    env = {
        **subprocess_env(),
        "CELLOPS_BACKEND_URL": backend_url,
        "CELLOPS_TOKEN": token,
        **member_home(home, origin),
    }
    server = JupyterServer(
        home, app="lab", env=env, extra_args=["--LabApp.expose_app_in_browser=True"]
    )
    for var in ("CELLOPS_URL", "CELLOPS_SERVER_URL", "CELLOPS_SERVER_TOKEN"):
        server.env.pop(var, None)
    return server.start()


def record_notebook(api: Any, origin: Path) -> None:
    """alice's run on the notebook (what her server sends after she ran a cell): the git
    notebook exists in the store, so comments can target its cells."""
    run = {
        "kind": "run",
        "key": f"run-{uuid.uuid4().hex}",
        "notebook": NOTEBOOK,
        "kernel_id": "kernel-alice",
        "user": "alice",
        "started_at": datetime.now(timezone.utc).isoformat(),
        "source": "alice-server",
        "instance": "process-1",
        "repo": str(origin),
        "repo_path": NOTEBOOK,
    }
    r = api.request("POST", "cellops/api/v1/ingest", json={"records": [run]})
    assert r.status_code == 200, f"ingest: {r.status_code} {r.text}"


def open_review_tab(page: Any, server: Any) -> None:
    """bob: the notebook open in a fresh workspace, the sidebar on its Review tab."""
    page.goto(f"{server.url}/lab?token={server.token}", wait_until="domcontentloaded")
    page.goto(f"{server.url}/lab/workspaces/bench-{uuid.uuid4().hex[:8]}/tree/{NOTEBOOK}?reset")
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")
    page.wait_for_function(
        "p => window.jupyterapp.shell.currentWidget?.context?.path === p", arg=NOTEBOOK
    )
    page.evaluate("() => window.jupyterapp.shell.activateById('cellops-sidebar')")
    page.locator("#cellops-sidebar button.cellops-tab[data-tab='review']").click()
    shown = "#cellops-sidebar .cellops-review :is(.cellops-review-cell, .cellops-empty)"
    page.locator(shown).first.wait_for(timeout=20_000)  # its threads, or "no comments yet"


def measure(
    alice: Any, bobs: dict[str, Any], n: int, warmup: int
) -> tuple[dict[str, list[float]], list[float], int]:
    """Post warmup + n comments; answers latencies per bob page, POST round trips, misses."""
    seen: dict[str, list[float]] = {name: [] for name in bobs}
    posts: list[float] = []
    missed = 0
    for i in range(warmup + n):
        text = f"probe {i} {uuid.uuid4().hex[:8]}"
        handles = {name: page.evaluate_handle(WATCH, text) for name, page in bobs.items()}
        t = alice.evaluate(POST, [NOTEBOOK, CELL_IDS[i % len(CELL_IDS)], f"latency {text}"])
        for name, handle in handles.items():
            at = handle.evaluate("w => w.done")
            handle.dispose()
            if i < warmup:
                continue
            if at is None:
                missed += 1
                seen[name].append(20_000.0)  # counted as its timeout: a miss is not fast
            else:
                seen[name].append(at - t["sent"])
        if i >= warmup:
            posts.append(t["answered"] - t["sent"])
    return seen, posts, missed


def main() -> int:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: p.add_argument("-n", type=int, default=None, help="measured comments"),
    )
    n = args.n or (10 if args.quick else 40)
    warmup = 2 if args.quick else 5
    banner("comment → another member's sidebar", args, comments=n, warmup=warmup)
    reason = postgres_reason()
    if reason:
        skip("review latency", f"needs PostgreSQL: {reason}")
        return 0
    from playwright.sync_api import sync_playwright
    from support import TeamBackend

    tmp = Path(tempfile.mkdtemp(prefix="cellops-bench-review-"))
    met: list[bool] = []
    with fresh_postgres_db() as db_url:
        replicas = [TeamBackend(db_url, tmp / "artifacts") for _ in range(2)]
        tokens = {name: replicas[0].add_user(name, "editor") for name in ("alice", "bob")}
        origin = shared_repository(tmp, NOTEBOOK, [(c, f"{c} = 1") for c in CELL_IDS])
        servers: dict[str, Any] = {}
        try:
            for backend in replicas:
                backend.start()
            homes = {"alice": ("alice", 0), "bob-on-A": ("bob", 0), "bob-on-B": ("bob", 1)}
            with ThreadPoolExecutor(3) as pool:
                futures = {
                    key: pool.submit(member_lab, tmp, key, replicas[r].url, tokens[who], origin)
                    for key, (who, r) in homes.items()
                }
                servers = {key: f.result() for key, f in futures.items()}
            record_notebook(replicas[0].api(tokens["alice"]), origin)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                pages = {
                    k: browser.new_page(viewport={"width": 1400, "height": 900}) for k in servers
                }
                alice = pages.pop("alice")
                alice.goto(f"{servers['alice'].url}/lab?token={servers['alice'].token}")
                alice.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
                for key, page in pages.items():
                    open_review_tab(page, servers[key])
                seen, posts, missed = measure(alice, pages, n, warmup)
                browser.close()
            labels = {"bob-on-A": "one replica (A → A)", "bob-on-B": "two replicas (A → B)"}
            print(f"\ncomment POSTed by alice → shown in bob's Review tab (ms, {n} comments)")
            rows = [["POST answered (baseline)", median(posts), percentile(posts, 99), max(posts),
                     float("nan"), float("nan")]]  # fmt: skip
            for key, values in seen.items():
                p50, p99 = median(values), percentile(values, 99)
                rows.append([labels[key], p50, p99, max(values), p50 / P50_MS, p99 / P99_MS])
            print_table(["", "p50", "p99", "max", "p50 / 500 ms", "p99 / 1 s"], rows)
            if missed:
                print(f"{missed} comment(s) never showed within 20 s (counted as 20 s)")
            for key, values in seen.items():
                met.append(goal(f"{labels[key]}, p50", median(values), "<=", P50_MS, " ms"))
                met.append(goal(f"{labels[key]}, p99", percentile(values, 99), "<=", P99_MS, " ms"))
        finally:
            for server in servers.values():
                stop_jupyter(server)
            for backend in replicas:
                backend.stop()
    return exit_code(args, met)


if __name__ == "__main__":
    sys.exit(main())
