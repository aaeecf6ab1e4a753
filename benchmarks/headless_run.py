"""What `cellops run` costs against plain `jupyter nbconvert --execute` on one notebook.

The same small notebook (a parameters cell, scikit-learn training on the bundled
breast-cancer dataset, a `cellops.log_metrics` call, a prediction) is executed headless
by both, each as a fresh process the way a CI job runs it, writing the executed
notebook: ``cellops run nb.ipynb --output …`` (embedded SQLite store; the run, its
executions, the logged metric and the notebook version recorded) and ``jupyter
nbconvert --to notebook --execute nb.ipynb --output …`` (nothing recorded; the notebook
catches the CellopsConfigError its `log_metrics` raises without a cellops server). After
one warm-up each, N rounds alternate the two (the order flips every round); the medians
of wall time and their ratio are reported.

Goal: cellops run / nbconvert median wall time <= 1.10.

    python benchmarks/headless_run.py [--quick] [--runs N] [--strict]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
from common import banner, exit_code, goal, median, parse_args, print_table, subprocess_env

GOAL_RATIO = 1.10

CELLS = [
    ("n_estimators = 50\nmax_depth = 6", ["parameters"]),
    (
        "import cellops\nfrom sklearn.datasets import load_breast_cancer\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.model_selection import train_test_split",
        [],
    ),
    (
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
        [],
    ),
    (
        "model = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,\n"
        "                               random_state=0).fit(X_train, y_train)\n"
        "accuracy = model.score(X_test, y_test)\n"
        "try:\n"
        "    cellops.log_metrics({'accuracy': accuracy})\n"
        "except cellops.CellopsConfigError:\n"
        "    pass  # plain nbconvert: no cellops server\n"
        "accuracy",
        [],
    ),
    ("model.predict(X_test[:5]).tolist()", []),
]


def write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P3"}
    for source, tags in CELLS:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, str(path))


def commands(folder: Path) -> dict[str, list[str]]:
    return {
        "cellops run": [
            sys.executable, "-m", "cellops_server.cli", "run", "bench.ipynb",
            "--output", "out-cellops.ipynb",
        ],
        "nbconvert --execute": [
            sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
            "bench.ipynb", "--output", "out-nbconvert.ipynb",
        ],
    }  # fmt: skip


def timed(cmd: list[str], folder: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:4])} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def recorded(home: Path) -> tuple[int, int]:
    """Runs and executions in the embedded store: every `cellops run` was recorded."""
    from cellops_server.store import Store

    store = Store(f"sqlite:///{home / 'cellops.db'}", str(home / "artifacts"))
    try:
        runs = store.list_runs("bench.ipynb", limit=500).items
        return len(runs), sum(r.executions for r in runs)
    finally:
        store.close()


def main() -> int:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: p.add_argument("--runs", type=int, default=10, help="rounds (default: 10)"),
    )
    rounds = 3 if args.quick else args.runs
    banner("cellops run vs jupyter nbconvert --execute", args, rounds=rounds, cells=len(CELLS))
    with tempfile.TemporaryDirectory(prefix="cellops-bench-headless-") as tmp:
        folder = Path(tmp)
        write_notebook(folder / "bench.ipynb")
        env = {**subprocess_env(), "CELLOPS_HOME": str(folder / "home")}
        for name in ("CELLOPS_URL", "CELLOPS_TOKEN", "CELLOPS_SERVER_URL", "CELLOPS_AUTOLOG"):
            env.pop(name, None)
        cmds = commands(folder)
        for cmd in cmds.values():  # warm-up: caches, .pyc files, the store's schema
            timed(cmd, folder, env)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for n in range(rounds):
            order = list(cmds) if n % 2 == 0 else list(reversed(cmds))
            for name in order:
                times[name].append(timed(cmds[name], folder, env))
        runs, executions = recorded(folder / "home")
    rows = [
        [name, median(t), min(t), max(t)] for name, t in times.items()
    ]  # seconds of wall time per run
    print_table(["variant", "median s", "min s", "max s"], rows)
    print(f"recorded by cellops: {runs} runs, {executions} executions (warm-up included)")
    ratio = median(times["cellops run"]) / median(times["nbconvert --execute"])
    met = goal("cellops run / nbconvert median wall time", ratio, "<=", GOAL_RATIO, "x")
    ok = runs == rounds + 1 and executions == (rounds + 1) * len(CELLS)
    if not ok:
        print(f"ERROR: expected {rounds + 1} runs of {len(CELLS)} executions each")
    return exit_code(args, [met, ok])


if __name__ == "__main__":
    sys.exit(main())
