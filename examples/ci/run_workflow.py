"""Run the `run:` steps of workflow.yml on this machine, as GitHub Actions would.

For trying the pipeline (and for cellops' own tests) without GitHub: each `run:` step of
the one job is executed with bash from the repository root, in order, stopping at the first
that fails, with the job's `env:`. `uses:` steps (checkout, setup-python, upload-artifact)
are GitHub's own and are skipped. Expressions are the few the workflow uses:
`${{ secrets.NAME }}` (from this process's environment), `${{ inputs.NAME || 'default' }}`
(from `--input NAME=VALUE`, else the workflow's default). The GitHub variables a job sees
(`GITHUB_SHA`, `GITHUB_RUN_ID`, …) are set from the local git checkout, so `cellops run`
records the run as a CI run.

    python examples/ci/run_workflow.py --input C=0.5 --skip "Install cellops"

Exits with the failing step's exit code (0 when every step passed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SECRET = re.compile(r"secrets\.(\w+)$")
INPUT = re.compile(r"inputs\.(\w+)(?:\s*\|\|\s*'([^']*)')?$")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workflow = yaml.safe_load((HERE / "workflow.yml").read_text())
    (job,) = workflow["jobs"].values()
    inputs = {**defaults(workflow), **dict(i.split("=", 1) for i in args.input)}
    root = repository_root()
    env = {**os.environ, **github_variables(root)}
    env.update({k: expand(str(v), inputs) for k, v in job.get("env", {}).items()})
    for step in job["steps"]:
        name = step.get("name") or step.get("uses", "")
        if "run" not in step or name in args.skip:
            print(f"-- skipped: {name}", flush=True)
            continue
        print(f"-- {name}", flush=True)
        code = subprocess.run(["bash", "-e", "-c", expand(step["run"], inputs)], cwd=root, env=env)
        if code.returncode != 0:
            print(f"-- failed ({code.returncode}): {name}", flush=True)
            return code.returncode
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--skip", action="append", default=[], metavar="STEP NAME")
    args = parser.parse_args(argv)
    if any("=" not in i for i in args.input):
        parser.error("--input takes NAME=VALUE")
    return args


def defaults(workflow: dict[str, Any]) -> dict[str, str]:
    # YAML reads the key `on` as True.
    triggers = workflow.get("on", workflow.get(True, {})) or {}
    declared = (triggers.get("workflow_dispatch") or {}).get("inputs", {})
    return {name: str(spec.get("default", "")) for name, spec in declared.items()}


def expand(text: str, inputs: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if secret := SECRET.match(expression):
            return os.environ.get(secret.group(1), "")
        if given := INPUT.match(expression):
            return inputs.get(given.group(1)) or given.group(2) or ""
        raise SystemExit(f"run_workflow.py does not know the expression {expression!r}")

    return EXPRESSION.sub(value, text)


def repository_root() -> Path:
    out = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=HERE, capture_output=True, text=True
    )
    return Path(out.stdout.strip()) if out.returncode == 0 else HERE.parent.parent


def github_variables(root: Path) -> dict[str, str]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return out.stdout.strip()

    return {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": git("rev-parse", "HEAD") or "0" * 40,
        "GITHUB_REF_NAME": git("rev-parse", "--abbrev-ref", "HEAD") or "main",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": os.environ.get("GITHUB_REPOSITORY", "example/cellops-pipeline"),
        "GITHUB_RUN_ID": os.environ.get("GITHUB_RUN_ID", str(os.getpid())),
    }


if __name__ == "__main__":
    sys.exit(main())
