"""The Versions tab read by a person: one step for a top-to-bottom run, what each version
changed, a name that stays after a reload, a Compare button that looks disabled until two
versions are selected, and a restored notebook saying where it came from.

Screenshots go to ui-tests/artifacts/.
"""

from __future__ import annotations

import json

from conftest import Lab
from playwright.sync_api import Locator, expect


def versions_tab(lab: Lab) -> Locator:
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("versions")
    return sidebar


def test_a_run_reads_as_one_step_and_a_named_version_survives_a_reload(lab: Lab) -> None:
    lab.new_notebook()
    path = lab.save("steps.ipynb")
    lab.run_cell(0, "a = 1", 1)
    lab.run_cell(1, "b = a + 1", 2)
    lab.run_cell(2, "c = b + 1", 3)

    sidebar = versions_tab(lab)
    rows = sidebar.locator(".cellops-version")
    expect(rows).to_have_count(3)
    # One row stands for the step; the other two versions are folded into it.
    expect(sidebar.locator(".cellops-version:visible")).to_have_count(1)
    step = sidebar.locator(".cellops-version-step:visible")
    expect(step).to_have_text("\u25b8 v1\u2013v3: 3 cells added")  # ▸ v1-v3
    # Nothing is selected: Compare looks disabled (dimmed, not-allowed cursor).
    compare = sidebar.locator("button.cellops-compare")
    expect(compare).to_be_disabled()
    look = compare.evaluate("b => { const s = getComputedStyle(b); return [s.opacity, s.cursor]; }")
    assert look == ["0.5", "not-allowed"], look
    lab.screenshot("collapsed")

    step.click()
    expect(sidebar.locator(".cellops-version:visible")).to_have_count(3)
    expect(sidebar.locator(".cellops-version-summary")).to_have_text(
        ["1 cell added", "1 cell added", "first version, 1 cell"]
    )
    for number in ("1", "3"):
        row = sidebar.locator(f".cellops-version[data-version-number='{number}']")
        row.locator("input.cellops-version-select").check()
    expect(compare).to_be_enabled()
    assert compare.evaluate("b => getComputedStyle(b).cursor") == "pointer"
    lab.screenshot("expanded")

    # Name version 2: it becomes a step of its own, and the name is stored.
    second = sidebar.locator(".cellops-version[data-version-number='2']")
    second.locator("button.cellops-version-rename").click()
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Name version 2")
    dialog.locator("input").fill("  baseline ")
    lab.accept(dialog, "Save")
    expect(second.locator(".cellops-version-name")).to_have_text("baseline")
    third = sidebar.locator(".cellops-version[data-version-number='3']")
    third.locator("button.cellops-version-pin-toggle").click()
    expect(third.locator(".cellops-version-pin")).to_be_visible()

    lab.save()
    lab.open(path)  # a reload: what is shown now comes from the server
    sidebar = versions_tab(lab)
    expect(sidebar.locator(".cellops-version:visible")).to_have_count(3)  # no step to fold
    second = sidebar.locator(".cellops-version[data-version-number='2']")
    expect(second.locator(".cellops-version-name")).to_have_text("baseline")
    expect(second.locator(".cellops-version-rename")).to_have_text("Rename…")
    third = sidebar.locator(".cellops-version[data-version-number='3']")
    expect(third.locator(".cellops-version-pin")).to_have_text("pinned")
    expect(third.locator(".cellops-version-pin-toggle")).to_have_attribute("aria-pressed", "true")
    expect(sidebar.locator(".cellops-version-pin:visible")).to_have_count(1)
    lab.screenshot("named-after-reload")

    # Restore version 1: the copy opens and says where it came from.
    sidebar.locator(".cellops-version[data-version-number='1'] button.cellops-restore").click()
    restored = "steps-v1.ipynb"
    lab.page.wait_for_function(
        "p => window.jupyterapp.shell.currentWidget?.context?.path === p", arg=restored
    )
    origin = sidebar.locator(".cellops-versions-origin")
    expect(origin).to_have_text("Restored from steps.ipynb, version 1")
    meta = json.loads((lab.server.root / restored).read_text())["metadata"]["cellops"]
    assert {k: meta["restored_from"][k] for k in ("path", "version")} == {
        "path": "steps.ipynb",
        "version": 1,
    }
    assert meta["restored_from"]["version_id"] > 0 and meta["restored_from"]["at"]
    lab.screenshot("restored-from")
