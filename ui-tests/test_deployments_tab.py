"""The Deployments tab and Deploy… in the Models tab, against a real ``jupyter lab`` whose
serving listener (its own free port, see conftest.py) serves what the browser deploys."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import uuid
from typing import Any

from conftest import Lab
from playwright.sync_api import Locator, expect

from tests.support import Api

API = "cellops/api/v1"
# The first rows of iris: the snippets send the signature's example row.
EXAMPLE = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
READY_MS = 60_000  # the serving router and its workers start on the first deployment


def register_iris(api: Api, model: str, versions: int) -> None:
    """Register ``versions`` versions of a real iris classifier (skops), as a kernel would."""
    from cellops.serialize import dumps
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    data = dumps(LogisticRegression(max_iter=300).fit(x, y))
    sha = hashlib.sha256(data).hexdigest()
    up = api.put_artifact(data)
    assert up.status_code in (200, 201), up.text
    signature = {
        "type": "dataframe",
        "shape": [None, 4],
        "columns": [{"name": c, "dtype": "float64"} for c in COLUMNS],
        "example": EXAMPLE,
    }
    for _ in range(versions):
        body = {"artifact": sha, "flavor": "sklearn", "signature": signature}
        r = api.request("POST", f"{API}/models/{model}/versions", json=body)
        assert r.status_code == 201, r.text


def deployment(lab: Lab, name: str) -> dict[str, Any]:
    return lab.server.api.cellops(f"deployments/{name}")


def snippet(detail: Locator, kind: str) -> str:
    return detail.locator(f".cellops-deploy-snippet[data-snippet='{kind}'] pre").inner_text()


def run_python_snippet(code: str, key: str) -> str:
    """Run a Python snippet as a user pastes it, with CELLOPS_KEY set; answers its output."""
    env = {**os.environ, "CELLOPS_KEY": key}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_deploy_from_the_models_tab_then_rollback_public_and_delete(lab: Lab) -> None:
    model = f"dep-{uuid.uuid4().hex[:6]}"
    register_iris(lab.server.api, model, 2)
    sidebar = lab.open_sidebar()
    # Seven tabs in the narrow default sidebar: at most two rows of buttons.
    heights = sidebar.evaluate(
        """s => [s.querySelector('.cellops-tabs').getBoundingClientRect().height,
                 s.querySelector('.cellops-tab').getBoundingClientRect().height]"""
    )
    assert heights[0] <= 2 * heights[1] + 2, f"the tab row is {heights[0]}px high: three rows"
    lab.sidebar_tab("models")
    sidebar.locator(f".cellops-model[data-model='{model}']").click()
    v2 = sidebar.locator(".cellops-model-version[data-version='2']")
    v2.locator("button.cellops-deploy").click()

    # The dialog: the name defaults to the model's; a name the URL cannot carry is refused.
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog).to_contain_text(f"Deploy {model} version 2")
    name_box = dialog.locator("input.cellops-deploy-name")
    expect(name_box).to_have_value(model)
    name_box.fill("no spaces/allowed")
    expect(dialog.locator("button.jp-mod-accept")).to_be_disabled()
    expect(dialog.locator(".cellops-deploy-public-warning")).to_contain_text("without a key")
    name = f"{model}-prod"
    name_box.fill(name)
    lab.screenshot("deploy-dialog")
    lab.accept(dialog, "Deploy")

    # The Deployments tab opens on it, with its key shown this once.
    expect(sidebar.locator("button.cellops-tab[data-tab='deployments']")).to_have_attribute(
        "aria-selected", "true"
    )
    detail = sidebar.locator(f".cellops-deployment-detail[data-deployment='{name}']")
    key = detail.locator(".cellops-deploy-key-value").input_value()
    assert len(key) >= 20, key
    made = deployment(lab, name)
    assert (made["model"], made["version"], made["public"]) == (model, 2, False)
    expect(detail.locator(".cellops-deployment-target")).to_have_text(f"{model} v2")
    expect(detail.locator(".cellops-url-v2")).to_have_text(made["urls"]["v2"])

    # It becomes ready without a click (the tab looks again while it starts), served by the
    # real serving runtime.
    state = detail.locator(".cellops-deploy-state")
    expect(state).to_have_attribute("data-state", "ready", timeout=READY_MS)
    lab.screenshot("ready-light")

    # The snippets carry its URLs and the $CELLOPS_KEY placeholder, never the key itself;
    # pasted as they are, with the key set, they predict.
    curl_v2 = snippet(detail, "curl-v2")
    assert f"{made['urls']['v2']}/infer" in curl_v2 and "$CELLOPS_KEY" in curl_v2
    assert made["urls"]["invocations"] in snippet(detail, "curl-mlflow")
    assert '"dataframe_split"' in snippet(detail, "curl-mlflow")
    assert all(key not in snippet(detail, k) for k in ("curl-v2", "python-v2", "curl-mlflow"))
    assert run_python_snippet(snippet(detail, "python-mlflow"), key).strip() == "[0]"
    assert run_python_snippet(snippet(detail, "python-v2"), key).strip() == "[0]"
    # Without the key the endpoint refuses: the snippet fails loudly.
    bad = subprocess.run(
        [sys.executable, "-c", snippet(detail, "python-mlflow")],
        env={**os.environ, "CELLOPS_KEY": "not-the-key"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode != 0 and "401" in bad.stderr, bad.stderr

    # The key is hidden once copied; the detail keeps no trace of it.
    detail.locator(".cellops-deploy-key-hide").click()
    expect(detail.locator(".cellops-deploy-key-notice")).to_have_count(0)

    lab.set_theme("JupyterLab Dark")
    expect(state).to_have_attribute("data-state", "ready")
    lab.screenshot("ready-dark")
    lab.set_theme("JupyterLab Light")

    # Rollback to version 1: the dialog offers the earlier versions only.
    detail.locator(".cellops-deploy-rollback").click()
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog.locator("select.cellops-deploy-version option")).to_have_text(["v1"])
    lab.accept(dialog, "Roll back")
    expect(detail.locator(".cellops-deployment-target")).to_have_text(f"{model} v1")
    assert deployment(lab, name)["version"] == 1
    expect(state).to_have_attribute("data-state", "ready", timeout=READY_MS)
    # Every change is an event, with who.
    events = detail.locator(".cellops-deployment-event")
    expect(events.first).to_be_visible()
    assert events.count() >= 2
    # The requests the snippets made show in the charts (Vega-Lite through rendermime).
    chart = detail.locator(".cellops-deploy-chart[data-chart='requests'] svg")
    expect(chart).to_be_visible(timeout=READY_MS)
    expect(detail.locator(".cellops-deploy-chart[data-chart='latency'] svg")).to_be_visible()
    lab.screenshot("rolled-back")

    # Public, after confirming: the UI says so clearly, and the snippets send no key.
    detail.locator(".cellops-deploy-public-toggle").click()
    lab.accept(lab.page.locator(".jp-Dialog"), "Make public")
    expect(detail.locator(".cellops-deploy-public")).to_have_text("public · no key")
    expect(detail.locator(".cellops-deploy-public-note")).to_contain_text("without a key")
    assert "Authorization" not in snippet(detail, "curl-v2")
    assert deployment(lab, name)["public"] is True

    # The list: its state, what it serves, the public badge.
    sidebar.locator(".cellops-deployments-view .cellops-back").click()
    row = sidebar.locator(f".cellops-deployment[data-deployment='{name}']")
    expect(row.locator(".cellops-deploy-state")).to_have_text("ready")
    expect(row.locator(".cellops-deploy-public")).to_be_visible()
    expect(row.locator(".cellops-deployment-stats")).to_contain_text(re.compile(r"req/min|no "))
    lab.screenshot("list")

    # Delete, after confirming: gone from the tab and from the API.
    row.click()
    detail.locator(".cellops-deploy-delete").click()
    lab.accept(lab.page.locator(".jp-Dialog"), "Delete")
    expect(row).to_have_count(0)
    gone = lab.server.api.request("GET", f"{API}/deployments/{name}")
    assert gone.status_code == 404, gone.text
