"""Reviews in the Models tab and the Activity tab, in embedded mode (the one user is admin):
a protected alias says what it still needs, refuses a move with each failed rule, an admin
overrides with a written reason, and the Activity tab lists all of it."""

from __future__ import annotations

import re
import uuid

from conftest import Lab
from playwright.sync_api import Locator, expect

API = "cellops/api/v1"

TRAIN = (
    "import cellops\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_iris(return_X_y=True)\n"
    "model = LogisticRegression(max_iter=300).fit(X, y)"
)

POLICY = {
    "protected_aliases": {
        "production": {
            "min_approvals": 1,
            "metric_gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}],
        }
    }
}


def test_protected_alias_needs_review_refuses_then_admin_overrides(lab: Lab) -> None:
    name = f"ui-review-{uuid.uuid4().hex[:6]}"
    api = lab.server.api
    lab.new_notebook()
    lab.run_cell(0, TRAIN, 1)
    # The metric logged in the registering cell is recorded with the version.
    lab.run_cell(
        1, f"cellops.log_metrics({{'accuracy': 0.88}})\nv = cellops.register(model, '{name}')", 2
    )
    expect(lab.output(1).locator(".jp-RenderedText[data-mime-type*='stderr']")).to_have_count(0)
    version = api.wait_for(f"models/{name}/versions/1", lambda v: v["version"] == 1)
    assert version["metrics"] == {"accuracy": 0.88}
    assert version["review"] == {"state": "none", "approvals": []}
    me = api.cellops("me")
    assert me["role"] == "admin", me  # embedded mode: the Jupyter user is admin

    r = api.request("PUT", f"{API}/models/{name}/policy", json=POLICY)
    assert r.status_code == 200, r.text

    sidebar = lab.open_sidebar()
    lab.sidebar_tab("models")
    sidebar.locator(f".cellops-model[data-model='{name}']").click()
    row = sidebar.locator(".cellops-model-version[data-version='1']")
    expect(row.locator(".cellops-review-state")).to_have_attribute("data-state", "none")
    missing = row.locator(".cellops-alias-missing[data-alias='production']")
    expect(missing).to_contain_text("production: needs 1 more approval")
    expect(missing).to_contain_text("accuracy 0.88 < 0.9")
    # An admin may ask for a review, but nobody approves their own version.
    expect(row.locator("button.cellops-request-review")).to_be_visible()
    expect(row.locator("button.cellops-approve")).to_have_count(0)
    expect(row.locator("button.cellops-request-changes")).to_have_count(0)
    expect(row.locator(".cellops-thread[data-target-kind='model_version']")).to_have_count(1)
    lab.screenshot("needs-approval")
    # Alone, nobody else can be asked: the picker says so rather than offering yourself.
    row.locator("button.cellops-request-review").click()
    picker = lab.page.locator(".jp-Dialog", has=lab.page.locator(".cellops-reviewer-picker"))
    expect(picker).to_contain_text("Nobody else can review it")
    expect(picker.get_by_role("checkbox")).to_have_count(0)
    picker.locator("button.jp-mod-reject").click()
    expect(picker).to_have_count(0)

    # Moving production is refused; the dialog lists each failed rule.
    refused = open_refusal(lab, row)
    rules = refused.locator(".cellops-failed-rule")
    expect(rules).to_have_count(2)
    expect(rules.nth(0)).to_have_attribute("data-rule", "min_approvals")
    expect(rules.nth(0)).to_contain_text("needs 1 more approval")
    expect(rules.nth(1)).to_have_attribute("data-rule", "metric:accuracy>=")
    expect(rules.nth(1)).to_have_text("accuracy 0.88 < 0.9")
    # No override without a written reason.
    override = refused.locator("button.jp-mod-accept")
    expect(override).to_be_disabled()
    lab.screenshot("refused")
    refused.locator("button.jp-mod-reject").click()
    expect(refused).to_have_count(0)
    assert api.cellops(f"models/{name}")["aliases"] == {}

    # The admin overrides with a reason: the alias moves and the reason is recorded.
    refused = open_refusal(lab, row)
    refused.locator("textarea.cellops-override-reason").fill("hotfix: churn spike")
    expect(override).to_be_enabled()
    override.click()
    expect(row.locator(".cellops-alias")).to_contain_text("production")
    assert api.cellops(f"models/{name}")["aliases"] == {"production": 1}
    # Holding it changes nothing the rules ask for: still not ready.
    expect(missing).to_contain_text("needs 1 more approval")

    # The Activity tab: the registration, the policy, the override and the move, newest first.
    lab.sidebar_tab("activity")
    feed = sidebar.locator(".cellops-activity-feed")
    mine = feed.locator(".cellops-activity-item", has_text=name)
    expect(mine.first).to_be_visible()
    types = mine.evaluate_all("els => els.map(e => e.dataset.type)")
    assert types[:4] == [
        "alias.moved",
        "alias.override",
        "policy.changed",
        "model_version.created",
    ], types
    expect(mine.nth(1)).to_contain_text('"hotfix: churn spike"')
    expect(mine.nth(3).locator(".cellops-activity-text")).to_have_text(
        re.compile(rf"registered {name} v1$")
    )
    # "Mine": all of it is the caller's own doing.
    sidebar.locator("input.cellops-activity-mine").check()
    expect(feed.locator(".cellops-activity-item[data-type='alias.override']").first).to_be_visible()
    lab.screenshot("activity")
    # An item links to what it concerns: the Models tab on that version.
    feed.locator(".cellops-activity-item[data-type='model_version.created']", has_text=name).click()
    expect(sidebar.locator(".cellops-model-version-focused")).to_have_attribute("data-version", "1")


def open_refusal(lab: Lab, row: Locator) -> Locator:
    """Set alias… → production → (confirm the move if asked) → the refusal dialog."""
    row.locator(".cellops-set-alias").click()
    dialog = lab.page.locator(".jp-Dialog")
    dialog.locator("input").fill("production")
    dialog.locator("button.jp-mod-accept").click()
    refused = lab.page.locator(".jp-Dialog", has=lab.page.locator(".cellops-refused-move"))
    expect(refused).to_be_visible()
    return refused
