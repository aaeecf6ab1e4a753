"""The Deployments tab's actions against real endpoints: Canary… splits the traffic and both
versions answer; Rotate key… shows the new key once and the old one stops working; a
deployment that follows an alias switches when a teammate moves the alias, live in the open
tab; and the drift badge. One real ``jupyter lab`` (conftest.py) with its own serving
listener; requests go to the real endpoints over HTTP."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import requests
from conftest import Lab
from playwright.sync_api import Locator, expect
from test_deployments_tab import API, EXAMPLE, READY_MS, deployment, register_iris

from tests.test_deploy_kernel import record_drift_verdict

VERSION_HEADER = "Cellops-Model-Version"
ROWS = {"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length",
                                       "petal_width"], "data": EXAMPLE[:1]}}  # fmt: skip


def create(lab: Lab, model: str, name: str, **target: Any) -> str:
    """A keyed deployment made through the API (as a teammate would); answers its key."""
    body = {"name": name, "model": model, **target}
    r = lab.server.api.request("POST", f"{API}/deployments", json=body)
    assert r.status_code == 201, r.text
    return r.json()["key"]


def call(lab: Lab, name: str, key: str) -> requests.Response:
    """One MLflow-scoring request to the real endpoint, as any client sends it."""
    url = deployment(lab, name)["urls"]["invocations"]
    return requests.post(url, json=ROWS, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def until(check: Any, what: str, seconds: float = READY_MS / 1000) -> Any:
    """Call ``check`` until it answers something truthy (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def open_detail(lab: Lab, name: str) -> Locator:
    """The Deployments tab, then the deployment's detail; waits until it is ready (the tab
    looks again every second while it is starting: no reload, no click)."""
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("deployments")
    sidebar.locator(f".cellops-deployment[data-deployment='{name}']").click()
    detail = sidebar.locator(f".cellops-deployment-detail[data-deployment='{name}']")
    state = detail.locator(".cellops-deploy-state")
    expect(state).to_have_attribute("data-state", "ready", timeout=READY_MS)
    return detail


def test_canary_splits_traffic_and_both_versions_answer(lab: Lab) -> None:
    model = f"can-{uuid.uuid4().hex[:6]}"
    register_iris(lab.server.api, model, 2)
    name = f"{model}-prod"
    key = create(lab, model, name, version=1)
    detail = open_detail(lab, name)

    detail.locator(".cellops-deploy-canary").click()
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog).to_contain_text(f"Canary for {name}")
    dialog.locator("select.cellops-deploy-version").select_option("2")
    dialog.locator("input.cellops-deploy-percent").fill("20")
    lab.accept(dialog, "Split traffic")

    # The tab shows the split; the API has it.
    expect(detail.locator(".cellops-deployment-traffic")).to_have_text("v1 80% · v2 20%")
    made = deployment(lab, name)
    assert {(t["version"], t["percent"]) for t in made["traffic"]} == {(1, 80), (2, 20)}
    expect(detail.locator(".cellops-deploy-state")).to_have_attribute(
        "data-state", "ready", timeout=READY_MS
    )

    # Real requests: every one answered, by both versions (about 80/20).
    served: Counter[str] = Counter()

    def both_answered() -> bool:
        r = call(lab, name, key)
        assert r.status_code == 200, r.text
        served[r.headers[VERSION_HEADER]] += 1
        return served["1"] > 0 and served["2"] > 0 and sum(served.values()) >= 40

    until(both_answered, "both versions to answer")
    assert served["1"] > served["2"], served  # 80 % against 20 %

    # The detail's metrics show both versions (refetched while it shows: no reload).
    for version in ("1", "2"):
        line = detail.locator(f".cellops-deployment-version-stats[data-version='{version}']")
        expect(line).to_contain_text("req/min", timeout=READY_MS)
    legend = detail.locator(".cellops-deploy-chart[data-chart='requests'] svg")
    expect(legend).to_contain_text("v1", timeout=READY_MS)
    expect(legend).to_contain_text("v2")
    lab.screenshot("canary-light")
    lab.set_theme("JupyterLab Dark")
    expect(detail.locator(".cellops-deployment-traffic")).to_be_visible()
    lab.screenshot("canary-dark")
    lab.set_theme("JupyterLab Light")

    # End canary: all requests to v1 again.
    detail.locator(".cellops-deploy-end-canary").click()
    expect(detail.locator(".cellops-deployment-traffic")).to_have_count(0)
    assert deployment(lab, name)["traffic"] == [{"version": 1, "percent": 100}]


def test_rotate_key_shows_the_new_key_once_and_the_old_one_stops_working(lab: Lab) -> None:
    model = f"rot-{uuid.uuid4().hex[:6]}"
    register_iris(lab.server.api, model, 1)
    name = f"{model}-prod"
    old = create(lab, model, name, version=1)
    detail = open_detail(lab, name)
    until(lambda: call(lab, name, old).status_code == 200, "the old key to work")

    detail.locator(".cellops-deploy-rotate").click()
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("old key get 401")
    lab.accept(dialog, "Rotate")
    notice = detail.locator(".cellops-deploy-key-notice")
    expect(notice).to_contain_text("shown this once")
    new = notice.locator(".cellops-deploy-key-value").input_value()
    assert len(new) >= 20 and new != old
    lab.screenshot("rotated")

    # The listener picks the new key up on its next look at the store (< 1 s).
    until(lambda: call(lab, name, old).status_code == 401, "the old key to be refused")
    assert call(lab, name, new).status_code == 200
    assert call(lab, name, "not-a-key").status_code == 401

    # Shown once: back to the list and in again, the key is gone from the tab.
    lab.sidebar.locator(".cellops-deployments-view .cellops-back").click()
    lab.sidebar.locator(f".cellops-deployment[data-deployment='{name}']").click()
    expect(detail.locator(".cellops-deploy-state")).to_be_visible()
    expect(detail.locator(".cellops-deploy-key-notice")).to_have_count(0)
    assert new not in lab.sidebar.inner_text()


def test_a_deployment_following_an_alias_switches_when_a_teammate_moves_it(lab: Lab) -> None:
    model = f"ali-{uuid.uuid4().hex[:6]}"
    register_iris(lab.server.api, model, 2)
    api = lab.server.api
    moved = api.request("PUT", f"{API}/models/{model}/aliases/champion", json={"version": 1})
    assert moved.status_code == 200, moved.text

    # Deploy… from the Models tab, choosing to follow champion.
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("models")
    sidebar.locator(f".cellops-model[data-model='{model}']").click()
    v1 = sidebar.locator(".cellops-model-version[data-version='1']")
    v1.locator("button.cellops-deploy").click()
    dialog = lab.page.locator(".jp-Dialog")
    dialog.locator("select.cellops-deploy-target").select_option("champion")
    name = f"{model}-live"
    dialog.locator("input.cellops-deploy-name").fill(name)
    lab.accept(dialog, "Deploy")
    detail = sidebar.locator(f".cellops-deployment-detail[data-deployment='{name}']")
    key = detail.locator(".cellops-deploy-key-value").input_value()
    target = detail.locator(".cellops-deployment-target")
    expect(target).to_have_text(f"{model} · follows alias champion (v1)")
    assert deployment(lab, name)["alias"] == "champion"
    expect(detail.locator(".cellops-deploy-state")).to_have_attribute(
        "data-state", "ready", timeout=READY_MS
    )
    assert call(lab, name, key).headers[VERSION_HEADER] == "1"

    # A teammate moves champion to v2 through the API: the open tab follows, no reload.
    moved = api.request("PUT", f"{API}/models/{model}/aliases/champion", json={"version": 2})
    assert moved.status_code == 200, moved.text
    expect(target).to_have_text(f"{model} · follows alias champion (v2)")
    lab.screenshot("alias-moved")

    # The endpoint switches to v2 with no failed request on the way.
    def serves_v2() -> bool:
        r = call(lab, name, key)
        assert r.status_code == 200, r.text
        return r.headers[VERSION_HEADER] == "2"

    until(serves_v2, "the endpoint to answer with version 2")
    expect(detail.locator(".cellops-deploy-state")).to_have_attribute(
        "data-state", "ready", timeout=READY_MS
    )


def test_drift_badge_shows_the_last_drift_verdict(lab: Lab) -> None:
    model = f"dri-{uuid.uuid4().hex[:6]}"
    register_iris(lab.server.api, model, 1)
    name = f"{model}-prod"
    create(lab, model, name, version=1)
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("deployments")
    row = sidebar.locator(f".cellops-deployment[data-deployment='{name}']")
    expect(row).to_be_visible()
    # Not judged yet: no badge, rather than a reassuring "no drift".
    expect(row.locator(".cellops-deploy-drift")).to_have_count(0)

    # A drift check finds sepal_length drifted, recorded as monitoring/drift.py records it.
    assert record_drift_verdict(lab.server.home, name, model, drifted=True)
    assert deployment(lab, name)["drifted"] is True
    lab.sidebar_tab("deployments")  # a reload of the tab (written behind the server's back)
    badge = row.locator(".cellops-deploy-drift")
    expect(badge).to_have_text("drift")
    expect(badge).to_have_attribute("data-drifted", "true")
    assert "drift check" in (badge.get_attribute("title") or "")
    lab.screenshot("drift-light")
    lab.set_theme("JupyterLab Dark")
    expect(badge).to_be_visible()
    lab.screenshot("drift-dark")
    lab.set_theme("JupyterLab Light")

    # Live: a teammate's change through the API is a `deployments` event; the list (which
    # no longer polls) shows it without a reload.
    patched = lab.server.api.request("PATCH", f"{API}/deployments/{name}", json={"public": True})
    assert patched.status_code == 200, patched.text
    expect(row.locator(".cellops-deploy-public")).to_be_visible()

    # The inputs are like the training data again: a quiet "no drift", in the detail too.
    assert record_drift_verdict(lab.server.home, name, model, drifted=False)
    lab.sidebar_tab("deployments")
    expect(badge).to_have_text("no drift")
    row.click()
    detail = sidebar.locator(f".cellops-deployment-detail[data-deployment='{name}']")
    quiet = detail.locator(".cellops-deployment-title .cellops-deploy-drift")
    expect(quiet).to_have_text("no drift")
    expect(quiet).to_have_attribute("data-drifted", "false")
    expect(detail.locator(".cellops-deployment-drift .cellops-section-title")).to_be_visible()
