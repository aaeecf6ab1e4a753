"""`cellops run NOTEBOOK`: the subcommand's flags, and its exit codes.

0 the notebook ran; 1 a cell raised (the cell and its traceback on stderr); 2 a usage
error (flags, parameters); 3 the notebook could not start (bad file, no such kernel, no
store); 124 a cell ran past ``--timeout`` (as coreutils' ``timeout`` exits).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

USAGE, NOT_STARTED = 2, 3


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"not a number of seconds above 0: {text!r}")
    return value


def add_run_parser(sub: Any) -> argparse.ArgumentParser:
    run = sub.add_parser(
        "run",
        help="execute a notebook headless and record it as a run",
        description="Execute NOTEBOOK with its kernel (no Jupyter server needed) and record "
        "it as a run, like a session in JupyterLab: into the local store, or to a team "
        "backend when CELLOPS_BACKEND_URL and CELLOPS_TOKEN are set. Exit codes: 0 ok, 1 a "
        "cell raised, 2 usage error, 3 the notebook could not start, 124 a cell timed out.",
    )
    run.add_argument("notebook", help="the .ipynb file to execute")
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        dest="parameters",
        help="a parameter (repeatable); VALUE is read as int, float, bool, JSON, else text. "
        "Parameters go into a cell tagged injected-parameters, after the cell tagged "
        "parameters (or first)",
    )
    run.add_argument(
        "--parameters-file",
        metavar="FILE",
        help="parameters from a YAML or JSON mapping (-p values win over it)",
    )
    run.add_argument(
        "--kernel", metavar="NAME", help="kernel to run (default: the notebook's own, else python3)"
    )
    run.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="seconds a cell may run before the run stops with exit code 124 (default: none)",
    )
    run.add_argument(
        "--output",
        metavar="OUT.ipynb",
        help="write the executed notebook, outputs included (also when a cell fails)",
    )
    run.add_argument(
        "--cwd", metavar="DIR", help="the kernel's working folder (default: the notebook's)"
    )
    return run


def run_command(args: argparse.Namespace) -> int:
    from .parameters import ParameterError, from_file, from_pairs

    try:
        parameters = from_file(args.parameters_file) if args.parameters_file else {}
        parameters.update(from_pairs(args.parameters))
    except ParameterError as exc:
        return _fail(USAGE, str(exc))
    from .runner import NotStarted, RunOptions, UsageError, run  # nbclient: slow to import

    options = RunOptions(
        args.notebook, parameters, args.kernel, args.timeout, args.output, args.cwd
    )
    try:
        result = run(options)
    except UsageError as exc:
        return _fail(USAGE, str(exc))
    except NotStarted as exc:
        return _fail(NOT_STARTED, str(exc))
    _report(args, result)
    return result.exit_code


def _report(args: argparse.Namespace, result: Any) -> None:
    if result.outcome == "error":
        print(f"cellops run: {args.notebook} failed; the cell that raised:\n", file=sys.stderr)
        print(result.failure, file=sys.stderr)
    elif result.outcome == "timeout":
        print(
            f"cellops run: {args.notebook}: a cell ran longer than {args.timeout:g} s "
            f"(--timeout):\n{result.failure}",
            file=sys.stderr,
        )
    if result.left_in_spool:
        print(
            f"cellops run: {result.target} is unreachable ({result.last_error}); "
            f"{result.left_in_spool} records wait in the spool {result.spool} and "
            "are sent when the next `cellops run` or JupyterLab with this cellops home starts",
            file=sys.stderr,
        )
    if args.output:
        print(f"cellops run: executed notebook written to {args.output}", file=sys.stderr)


def _fail(code: int, message: str) -> int:
    print(f"cellops run: {message}", file=sys.stderr)
    return code
