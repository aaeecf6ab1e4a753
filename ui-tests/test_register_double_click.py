"""A double-clicked Register on a ModelCard makes one model version (issue 10, defect 3).

The browser sends two clicks as fast as a person's double click; the kernel handles
the second after the first. The card's button is disabled while the registration
runs, and the second request carries the first one's idempotency key, so the
registry holds exactly one version.
"""

from __future__ import annotations

from conftest import Lab
from playwright.sync_api import expect

NAME = "double-click-iris"
TRAIN = (
    "import cellops\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.tree import DecisionTreeClassifier\n"
    "X, y = load_iris(return_X_y=True)\n"
    "model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)"
)


def test_double_clicked_register_makes_one_version(lab: Lab) -> None:
    lab.new_notebook()
    lab.run_cell(0, TRAIN, 1)
    lab.run_cell(1, f"from cellops.widgets import ModelCard\nModelCard(model, name='{NAME}')", 2)
    card = lab.output(1).locator(".cellops-card")
    button = card.locator("button.cellops-card-register")
    expect(button).to_be_enabled()

    button.dblclick()

    expect(card.locator(".cellops-card-done")).to_contain_text(f"Registered {NAME} version 1")
    versions = lab.server.api.cellops(f"models/{NAME}/versions")
    assert [v["version"] for v in versions["items"]] == [1]
    # Once the registration has finished the button is usable again.
    expect(button).to_be_enabled()
    lab.screenshot("registered-once")


def test_register_button_is_disabled_while_registering(lab: Lab) -> None:
    lab.new_notebook()
    lab.run_cell(0, TRAIN, 1)
    lab.run_cell(1, f"from cellops.widgets import ModelCard\nModelCard(model, name='{NAME}-2')", 2)
    card = lab.output(1).locator(".cellops-card")
    button = card.locator("button.cellops-card-register")
    # Watch the button from the page: record whether it was ever disabled after the click.
    button.evaluate(
        """b => {
            window.__cellopsDisabledSeen = false;
            new MutationObserver(() => {
                if (b.disabled) { window.__cellopsDisabledSeen = true; }
            }).observe(b, {attributes: true});
        }"""
    )
    button.click()
    expect(card.locator(".cellops-card-done")).to_contain_text(f"Registered {NAME}-2 version 1")
    assert lab.page.evaluate("window.__cellopsDisabledSeen") is True
    expect(button).to_be_enabled()
