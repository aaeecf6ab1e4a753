"""The kernel library's costs: `import cellops`, and a register + load round trip.

1. `import cellops` in a fresh interpreter with IPython already imported (as in a kernel):
   p50 of N subprocesses, against the same interpreter importing only IPython (baseline).
   Goal: ≤ 150 ms added.
2. `cellops.register` + `cellops.load` of a 50-tree random forest (iris) against a real
   Jupyter server with cellops (embedded SQLite), p50 of N; baseline in the same run: skops
   `dumps` + `loads` of the same model alone, so the ratio is what uploading, verifying,
   storing and downloading add.

    python benchmarks/registry.py [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
from common import (
    REPO,
    banner,
    exit_code,
    goal,
    median,
    ms,
    parse_args,
    print_table,
    stop_jupyter,
    subprocess_env,
)

IMPORT_ONLY = (
    "import time, IPython; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
)


def import_seconds(stmt: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ONLY.format(stmt=stmt)],
        capture_output=True,
        text=True,
        env={**subprocess_env(), "PYTHONPATH": str(REPO / "widgets")},
        check=True,
    )
    return float(out.stdout.strip())


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    reps = 5 if args.quick else 15
    banner("kernel library: import and registry round trip", args, reps=reps)

    imports, baseline = [], []
    for _ in range(reps):  # interleaved
        baseline.append(import_seconds("pass"))
        imports.append(import_seconds("import cellops"))
    print_table(
        ["", "p50 ms"],
        [["import cellops (IPython already loaded)", ms(median(imports))],
         ["nothing (baseline)", ms(median(baseline))]],
    )  # fmt: skip
    met = [goal("import cellops, p50", ms(median(imports)), "<=", 150, " ms")]

    import cellops
    from cellops import serialize
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from support import JupyterServer

    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
    server = JupyterServer(Path(tempfile.mkdtemp(prefix="cellops-bench-registry-"))).start()
    try:
        os.environ["CELLOPS_URL"] = server.url + "/"
        os.environ["CELLOPS_TOKEN"] = server.token
        cellops.reset_client()
        round_trips, local = [], []
        size = len(serialize.dumps(model))
        for _ in range(reps):
            t = time.perf_counter()
            serialize.loads(serialize.dumps(model))
            local.append(time.perf_counter() - t)
            t = time.perf_counter()
            version = cellops.register(model, "bench-forest")
            loaded = cellops.load("bench-forest", version=version.version)
            round_trips.append(time.perf_counter() - t)
            assert (loaded.predict(X) == model.predict(X)).all(), "the loaded model differs"
        print(f"\n50-tree random forest, skops artifact {size / 1e6:.2f} MB, {reps} round trips")
        print_table(
            ["", "p50 ms", "ratio"],
            [["register + load through the server", ms(median(round_trips)),
              median(round_trips) / median(local)],
             ["skops dumps + loads alone (baseline)", ms(median(local)), 1.0]],
        )  # fmt: skip
    finally:
        stop_jupyter(server)
    return exit_code(args, met)


if __name__ == "__main__":
    sys.exit(main())
