"""What cellops.autolog() adds to a scikit-learn ``fit``.

LogisticRegression on iris (150 x 4), in this process: the same estimator is fitted by
the original ``fit`` (autolog off: the function autolog keeps for ``disable``) and by
the patched one (autolog on), interleaved fit by fit with the order flipped every pair,
after a warm-up. The patched fit does all of its in-cell work: params, duration,
training score, the data fingerprint (sha256 of X and y) and validating and queueing
the log records.

The server is deliberately unreachable (``CELLOPS_URL=http://127.0.0.1:9``): the
background sender just buffers, so the figure is the cost paid inside the cell, not a
network round trip (which never happens in the cell anyway). There is no kernel here,
so the "current cell" is a fixed execute_request id.

The table also times the recording step alone (what runs after the original fit
returns), which is what the difference of the two fits estimates with less noise.

An informational second row fits a larger synthetic table (20,000 x 20) to show how
the fingerprint and the training score grow with the data.

Goal: added p50 <= 5 ms per fit (iris).

    python benchmarks/autolog.py [--quick]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: F401  (puts server/, widgets/, tests/ on sys.path)
from common import (
    banner,
    exit_code,
    gc_paused,
    goal,
    median,
    ms,
    now,
    parse_args,
    percentile,
    print_table,
)

GOAL_ADDED_MS = 5.0


def measure(fit_off: Any, fit_on: Any, n: int) -> tuple[list[float], list[float]]:
    off: list[float] = []
    on: list[float] = []
    with gc_paused():
        for i in range(n):
            pair = [(fit_off, off), (fit_on, on)]
            for fn, into in pair if i % 2 == 0 else reversed(pair):
                t0 = now()
                fn()
                into.append(now() - t0)
    return off, on


def main() -> int:
    args = parse_args(__doc__.split("\n\n")[0])
    os.environ["CELLOPS_URL"] = "http://127.0.0.1:9"  # unreachable: the sender only buffers
    os.environ["CELLOPS_TOKEN"] = "bench"
    warmup, n = (20, 100) if args.quick else (50, 400)
    banner("autolog: added time per fit", args, warmup=warmup, fits_per_variant=n)

    import cellops
    import numpy as np
    from cellops import context
    from cellops.autolog import sklearn as patches
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    fixed = context.Execution("bench-msg-id", "bench-cell")
    context.current = lambda: fixed  # no kernel: pretend every fit runs in one cell
    t0 = now()
    cellops.autolog()
    print(f"  autolog() enable: {ms(now() - t0):.0f} ms (once per kernel)")
    original = patches._originals[LogisticRegression, "fit"]

    rng = np.random.default_rng(0)
    X_iris, y_iris = load_iris(return_X_y=True)
    X_big = rng.normal(size=(2_000 if args.quick else 20_000, 20))
    y_big = (X_big[:, 0] + rng.normal(size=len(X_big)) > 0).astype(int)
    cases = [
        ("iris 150x4", X_iris, y_iris, warmup, n),
        (f"synthetic {len(X_big):,}x20", X_big, y_big, 5, max(10, n // 10)),
    ]
    rows = []
    added_iris = float("nan")
    for label, X, y, w, count in cases:
        model = LogisticRegression(max_iter=1000)

        def fit_off(model=model, X=X, y=y) -> None:
            original(model, X, y)

        def fit_on(model=model, X=X, y=y) -> None:
            model.fit(X, y)

        measure(fit_off, fit_on, w)
        off, on = measure(fit_off, fit_on, count)
        paired = median([b - a for a, b in zip(off, on, strict=True)])
        added = median(on) - median(off)
        if label.startswith("iris"):
            added_iris = ms(added)
        # What autolog does after the original fit returns, timed alone (less noisy than a
        # difference of two fits): fingerprint, params, training score, queueing the logs.
        model.fit(X, y)
        record = []
        with gc_paused():
            for _ in range(count):
                t0 = now()
                patches._record(model, X, y, 0.01)
                record.append(now() - t0)
        rows.append(
            [
                label,
                ms(median(off)),
                ms(percentile(off, 90)),
                ms(median(on)),
                ms(percentile(on, 90)),
                ms(added),
                ms(paired),
                ms(median(record)),
                median(on) / median(off),
            ]
        )
    print_table(
        [
            "fit",
            "off p50 ms",
            "off p90 ms",
            "on p50 ms",
            "on p90 ms",
            "added p50 ms",
            "paired diff p50 ms",
            "record-only p50 ms",
            "on/off",
        ],
        rows,
    )
    print(f"  records buffered for the unreachable server: {cellops.tracking._sender.pending:,}")
    met = goal("autolog added p50 per fit (iris)", added_iris, "<=", GOAL_ADDED_MS, " ms")
    cellops.autolog(disable=True)
    return exit_code(args, [met])


if __name__ == "__main__":
    sys.exit(main())
