"""Issue 13 in JupyterLab: runs of `cellops run` in the Runs tab and the activity feed.

A pipeline runs a notebook of the lab's root with `cellops run` (a real subprocess, a real
kernel, recording into the lab's own store) twice: once "under GitHub Actions" with
parameters, once "under GitLab CI" with a job URL that is a `javascript:` URL (CI
variables are whatever the pipeline's author set) and a parameter that makes a cell raise.
Then a person opens the notebook in JupyterLab and runs a cell of their own.

The Runs tab marks the two headless runs (badge, outcome), the run view lists their
parameters and links to the CI job (new tab, rel=noopener) — but never turns the
`javascript:` URL into a link. The Activity tab says each run finished, with its outcome
and parameters. Screenshots: ui-tests/artifacts/runs_headless-*.png.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from conftest import Lab
from playwright.sync_api import expect

from tests.support import CELLOPS_CLIENT_ENV, JupyterServer

NOTEBOOK = "pipeline-train.ipynb"
GITHUB_URL = "https://github.com/acme/churn/actions/runs/4242"
EVIL_URL = "javascript:alert(document.domain)"
# Variables a CI system sets: dropped from the runs' environment, then set per run.
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI")


def write_notebook(root: Path) -> None:
    """A training notebook with a cell tagged ``parameters`` (papermill's convention)."""
    cells = [
        {
            "id": "params",
            "cell_type": "code",
            "metadata": {"tags": ["parameters"]},
            "source": "alpha = 0.1\nepochs = 1\nexplode = False",
            "outputs": [],
            "execution_count": None,
        },
        {
            "id": "train",
            "cell_type": "code",
            "metadata": {},
            "source": "if explode:\n    raise RuntimeError('asked to fail')\nscore = alpha * epochs\n"
            "print(score)",
            "outputs": [],
            "execution_count": None,
        },
    ]
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / NOTEBOOK).write_text(json.dumps(nb))


def cellops_env(server: JupyterServer, ci: dict[str, str]) -> dict[str, str]:
    """The lab's environment (its CELLOPS_HOME: its store), as a CI job with ``ci`` sets it."""
    env = {
        k: v
        for k, v in server.env.items()
        if k not in CELLOPS_CLIENT_ENV
        and k not in CI_VARIABLES
        and not k.startswith(("GITHUB_", "CI_"))
    }
    env.pop("CELLOPS_BACKEND_URL", None)
    env.update(ci)
    return env


def cellops_run(
    server: JupyterServer,
    ci: dict[str, str],
    *params: tuple[str, str],
    notebook: str = NOTEBOOK,
) -> subprocess.CompletedProcess[str]:
    """``cellops run NOTEBOOK -p …`` in the lab's root, recording into the lab's store."""
    args = [arg for name, value in params for arg in ("-p", name, value)]
    return subprocess.run(
        [sys.executable, "-m", "cellops_server.cli", "run", notebook, *args, "--timeout", "60"],
        cwd=server.root,
        env=cellops_env(server, ci),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_headless_runs_show_badge_parameters_and_a_safe_ci_link(
    lab: Lab, jupyter: JupyterServer
) -> None:
    write_notebook(jupyter.root)
    github = cellops_run(
        jupyter,
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
            "GITHUB_REF_NAME": "main",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/churn",
            "GITHUB_RUN_ID": "4242",
        },
        ("alpha", "0.5"),
        ("epochs", "3"),
    )
    assert github.returncode == 0, github.stdout + github.stderr
    gitlab = cellops_run(
        jupyter,
        {
            "GITLAB_CI": "true",
            "CI_COMMIT_SHA": "fedcba9876543210fedcba9876543210fedcba98",
            "CI_COMMIT_REF_NAME": "feature/x",
            "CI_JOB_URL": EVIL_URL,
        },
        ("explode", "True"),
    )
    assert gitlab.returncode == 1, gitlab.stdout + gitlab.stderr  # a cell raised
    # What the server holds is what the pipeline said, the javascript: URL included: it is
    # the frontend that must not make it a link.
    runs = jupyter.api.get("cellops/api/v1/runs", notebook=NOTEBOOK)["items"]
    assert [r["source"] for r in runs] == ["headless", "headless"], runs
    assert runs[0]["ci"]["url"] == EVIL_URL and runs[0]["outcome"] == "error", runs[0]
    assert runs[1]["ci"]["url"] == GITHUB_URL and runs[1]["outcome"] == "ok", runs[1]

    # A person opens the notebook and runs a cell: an interactive run, no badge.
    lab.open(NOTEBOOK)
    lab.wait_for_kernel()
    lab.cells.nth(0).locator(".cm-content").click()
    lab.page.keyboard.press("Shift+Enter")
    expect(lab.cells.nth(0).locator(".jp-InputPrompt")).to_have_text("[1]:")
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("runs")
    rows = sidebar.locator(".cellops-run")
    expect(rows).to_have_count(3)
    interactive, failed, ok = rows.nth(0), rows.nth(1), rows.nth(2)
    expect(interactive.locator(".cellops-headless-badge")).to_have_count(0)
    expect(failed.locator(".cellops-headless-badge")).to_have_text("headless")
    expect(failed.locator(".cellops-run-outcome")).to_have_attribute("data-outcome", "error")
    expect(failed.locator(".cellops-run-outcome")).to_have_text("failed")
    expect(ok.locator(".cellops-headless-badge")).to_have_text("headless")
    expect(ok.locator(".cellops-run-outcome")).to_have_text("ok")
    expect(ok.locator(".cellops-run-origin")).to_have_attribute("title", "alpha=0.5, epochs=3")
    lab.screenshot("list")

    # The GitHub run: its parameters and a link to the job, opened in a new tab.
    ok.click()
    header = sidebar.locator(".cellops-run-view .cellops-run-header")
    params = header.locator(".cellops-run-param")
    expect(params).to_have_count(2)
    expect(params.nth(0)).to_have_text("alpha=0.5")
    expect(params.nth(1)).to_have_text("epochs=3")
    link = header.locator("a.cellops-run-ci")
    expect(link).to_have_attribute("href", GITHUB_URL)
    expect(link).to_have_attribute("target", "_blank")
    assert "noopener" in (link.get_attribute("rel") or "").split()
    expect(link).to_have_text("GitHub Actions · 0123456 · main")
    expect(header.locator(".cellops-run-summary .cellops-run-outcome")).to_have_text("ok")
    lab.screenshot("github-run")

    # The GitLab run: its javascript: job URL is text, not a link, anywhere in the sidebar.
    header.locator("button.cellops-back").click()
    failed.click()
    expect(header.locator(".cellops-run-param")).to_have_text(["explode=true"])
    ci = header.locator(".cellops-run-ci")
    expect(ci).to_have_text("GitLab CI · fedcba9 · feature/x")
    assert ci.evaluate("node => node.tagName") == "SPAN"
    expect(sidebar.locator("a.cellops-run-ci")).to_have_count(0)
    expect(lab.page.locator("a[href^='javascript:' i]")).to_have_count(0)
    expect(header.locator(".cellops-run-summary .cellops-run-outcome")).to_have_text("failed")
    lab.screenshot("gitlab-run")

    # The activity feed: each headless run finished, with its outcome and parameters.
    lab.sidebar_tab("activity")
    finished = sidebar.locator(".cellops-activity-item[data-type='run.finished']")
    expect(finished).to_have_count(2)
    expect(finished.nth(0)).to_contain_text(f"Headless run of {NOTEBOOK}")
    expect(finished.nth(0)).to_contain_text("failed")
    expect(finished.nth(0)).to_contain_text("explode=true")
    expect(finished.nth(1)).to_contain_text("finished: ok")
    expect(finished.nth(1)).to_contain_text("alpha=0.5, epochs=3")
    expect(finished.nth(1)).to_contain_text("CI: GitHub Actions · 0123456 · main")
    # A failed run is marked like other things that went wrong (the item's border).
    assert "cellops-mod-warning" in (finished.nth(0).get_attribute("class") or "")
    assert "cellops-mod-warning" not in (finished.nth(1).get_attribute("class") or "")
    lab.screenshot("activity")

    # An item opens its run: the GitHub run's view, with its CI link.
    finished.nth(1).click()
    expect(header.locator(".cellops-run-summary-number")).to_have_text("Run #1")
    expect(header.locator("a.cellops-run-ci")).to_have_attribute("href", GITHUB_URL)


TRAIN_NOTEBOOK = "pipeline-register.ipynb"
TRAIN_CELLS = [
    ("params", ["parameters"], "accuracy = 1.0\nmodel_name = 'x'"),
    (
        "train",
        [],
        "import cellops\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True)\n"
        "model = LogisticRegression(max_iter=300).fit(X, y)\n"
        "cellops.log_metrics({'accuracy': accuracy})\n"
        "cellops.register(model, model_name)",
    ),
]


def test_a_refused_promotion_of_a_pipeline_shows_in_the_feed(
    lab: Lab, jupyter: JupyterServer
) -> None:
    name = f"pipeline-{uuid.uuid4().hex[:6]}"
    nb = {
        "cells": [
            {
                "id": cell,
                "cell_type": "code",
                "metadata": {"tags": tags},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
            for cell, tags, source in TRAIN_CELLS
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (jupyter.root / TRAIN_NOTEBOOK).write_text(json.dumps(nb))
    trained = cellops_run(
        jupyter, {}, ("accuracy", "0.5"), ("model_name", name), notebook=TRAIN_NOTEBOOK
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    policy = {
        "protected_aliases": {
            "production": {"metric_gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}]}
        }
    }
    r = jupyter.api.request("PUT", f"cellops/api/v1/models/{name}/policy", json=policy)
    assert r.status_code == 200, r.text
    promote = subprocess.run(
        [sys.executable, "-m", "cellops_server.cli", "promote", name, "1", "--alias", "production"],
        cwd=jupyter.root,
        env=cellops_env(jupyter, {}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert promote.returncode == 4, promote.stdout + promote.stderr  # refused by policy

    sidebar = lab.open_sidebar()
    lab.sidebar_tab("activity")
    refused = sidebar.locator(".cellops-activity-item[data-type='promotion.refused']")
    expect(refused).to_have_count(1)
    expect(refused.locator(".cellops-activity-text")).to_contain_text(
        f"tried to move production of {name} to v1: refused by its rules"
    )
    expect(refused.locator(".cellops-activity-detail")).to_contain_text("accuracy")
    assert "cellops-mod-warning" in (refused.get_attribute("class") or "")
    registered = sidebar.locator(".cellops-activity-item[data-type='model_version.created']")
    expect(registered.filter(has_text=name)).to_have_count(1)
    lab.screenshot("refused")
    # The item opens the model it concerns.
    refused.click()
    expect(sidebar.locator(".cellops-model-version[data-version='1']")).to_be_visible()
