"""Screenshots of every sidebar view at the default and a wide width, light and dark.

One realistic session (a notebook with a few executed cells, a logged metric, a wide
table output, an error, an edited cell and a registered model) is shared by the module.
Each test picks a theme and a width and walks through VIEWS, saving
``artifacts/screenshots/<view>-<width>-<theme>.png`` and checking, for each view, that
the panel does not overflow sideways, header buttons stay inside the panel and text is
readable. Tabs added later that VIEWS does not name are shot too (``tab-<id>``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import ARTIFACTS, ConsoleWatcher, Lab
from playwright.sync_api import Browser, expect
from playwright.sync_api import Error as PlaywrightError

from tests.support import JupyterServer

SHOTS = ARTIFACTS / "screenshots"
MODEL = "churn-gradient-boosted-classifier-eu-west"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
WIDE_PX = 640

TRAIN = (
    "import cellops\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_iris(return_X_y=True)\n"
    "model = LogisticRegression(max_iter=300).fit(X, y)\n"
    "cellops.log_metrics({'train_accuracy': model.score(X, y), 'n_features': X.shape[1]})"
)
# A table wider than any sidebar: it must scroll inside its own box.
WIDE_TABLE = (
    "from IPython.display import HTML\n"
    "cols = [f'feature_{i:02d}' for i in range(14)]\n"
    "HTML('<table><tr>' + ''.join(f'<th>{c}</th>' for c in cols) + '</tr><tr>'"
    " + ''.join(f'<td>{i * 0.123:.3f}</td>' for i in range(14)) + '</tr></table>')"
)

# Buttons that must stay reachable: header actions and the tab bar.
HEADER_BUTTONS = ", ".join(
    [
        ".cellops-tab",
        ".cellops-back",
        ".cellops-detail-close",
        ".cellops-diff-close",
        ".cellops-compare",
        ".cellops-run-header button",
        ".cellops-models-header button",
    ]
)
# Boxes meant to scroll sideways (code, outputs, tables); everything else must fit.
CONTENT_SCROLLERS = ", ".join(
    [
        ".cellops-code",
        ".cellops-outputs",
        ".cellops-line-diff",
        ".cellops-run-compare-scroll",
        ".cellops-notebook-cell-code",
        "pre",
    ]
)


@dataclass(frozen=True)
class View:
    """A sidebar view: its name in file names and how to get to it from any other view."""

    name: str
    show: Callable[[Lab], None]


def _tab(lab: Lab, tab: str) -> None:
    lab.sidebar_tab(tab)
    expect(lab.sidebar.locator(f"button.cellops-tab[data-tab='{tab}']")).to_have_attribute(
        "aria-selected", "true"
    )


def click_if_shown(lab: Lab, selector: str) -> None:
    """Click the first visible match of `selector` in the sidebar, if there is one."""
    shown = lab.sidebar.locator(f"{selector}:visible")
    if shown.count() > 0:
        shown.first.click()


def show_runs(lab: Lab) -> None:
    _tab(lab, "runs")
    click_if_shown(lab, ".cellops-run-header .cellops-back")
    expect(lab.sidebar.locator(".cellops-run").first).to_be_visible()


def show_run(lab: Lab) -> None:
    show_runs(lab)
    lab.sidebar.locator(".cellops-run").first.click()
    expect(lab.sidebar.locator(".cellops-timeline .cellops-execution").first).to_be_visible()
    click_if_shown(lab, ".cellops-detail-close")
    expect(lab.sidebar.locator(".cellops-execution-detail")).to_be_hidden()


def show_execution(lab: Lab) -> None:
    show_run(lab)
    lab.sidebar.locator(".cellops-timeline .cellops-execution", has_text="HTML").first.click()
    detail = lab.sidebar.locator(".cellops-execution-detail")
    expect(detail.locator("table")).to_be_visible()


def show_versions(lab: Lab) -> None:
    _tab(lab, "versions")
    click_if_shown(lab, ".cellops-diff-close")
    expect(lab.sidebar.locator(".cellops-version").nth(1)).to_be_visible()


def show_diff(lab: Lab) -> None:
    show_versions(lab)
    # Versions 5 and 6: the edit of `rate` (a changed cell, shown line by line). Runs of
    # versions that only added cells may be folded into one row: unfold it.
    click_if_shown(lab, ".cellops-version.cellops-mod-collapsed .cellops-version-step")
    for number in (6, 5):
        version = lab.sidebar.locator(f".cellops-version[data-version-number='{number}']")
        version.locator("input.cellops-version-select").check()
    lab.sidebar.locator("button.cellops-compare").click()
    expect(lab.sidebar.locator(".cellops-diff .cellops-line-insert").first).to_be_visible()


def show_models(lab: Lab) -> None:
    _tab(lab, "models")
    click_if_shown(lab, ".cellops-models-header .cellops-back")
    expect(lab.sidebar.locator(f".cellops-model[data-model='{MODEL}']")).to_be_visible()


def show_model_version(lab: Lab) -> None:
    show_models(lab)
    lab.sidebar.locator(f".cellops-model[data-model='{MODEL}']").click()
    expect(lab.sidebar.locator(".cellops-model-version").first).to_be_visible()


# Add a view here to have it shot and checked at every width and theme.
VIEWS = [
    View("runs", show_runs),
    View("run", show_run),
    View("execution", show_execution),
    View("versions", show_versions),
    View("diff", show_diff),
    View("models", show_models),
    View("model-version", show_model_version),
]
KNOWN_TABS = {"runs", "versions", "models"}


def other_tabs(lab: Lab) -> list[View]:
    """Tabs other features added that VIEWS does not name yet: shot as they open."""
    ids = lab.sidebar.locator("button.cellops-tab").evaluate_all("bs => bs.map(b => b.dataset.tab)")

    def show(tab: str) -> Callable[[Lab], None]:
        def go(lab: Lab) -> None:
            _tab(lab, tab)
            # Loaded: the body shows some text (rows, or an empty state saying so).
            lab.page.wait_for_function(
                "() => document.querySelector('#cellops-sidebar .cellops-body')"
                ".innerText.trim().length > 0"
            )

        return go

    return [View(f"tab-{t}", show(t)) for t in ids if t not in KNOWN_TABS]


# -- the session --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def session(
    browser: Browser, browser_context_args: dict[str, Any], jupyter: JupyterServer
) -> Iterator[tuple[Lab, float]]:
    """A lab page with the session's notebook open; answers it and the default width."""
    context = browser.new_context(**browser_context_args)
    watcher = ConsoleWatcher(context)
    lab = Lab(context.new_page(), jupyter, "screenshots")
    try:
        lab.open()
        lab.new_notebook()
        path = lab.save("screens.ipynb")
        run_slow_cell(lab, 0, TRAIN, 1)
        run_slow_cell(lab, 1, f"v1 = cellops.register(model, '{MODEL}', alias='production')", 2)
        lab.run_cell(2, WIDE_TABLE, 3)
        lab.run_cell(3, "1 / 0", 4)
        lab.run_cell(4, "rate = 0.1\nepochs = 3", 5)
        lab.run_cell(4, "rate = 0.5\nepochs = 3", 6, replace=True)
        # The writer is asynchronous: every execution and version is stored before the shots.
        jupyter.api.wait_for("executions", lambda b: len(b["items"]) == 6, notebook=path)
        jupyter.api.wait_for("versions", lambda b: len(b["items"]) == 6, notebook=path)
        lab.open_sidebar()
        default = sidebar_width(lab)
        assert 200 <= default < WIDE_PX, default
        watcher.check("building the session")
        yield lab, default
        watcher.check("taking the screenshots")
    finally:
        # The theme is a user setting kept by the server: leave the next modules Light.
        lab.set_theme(THEMES["light"])
        context.close()


def run_slow_cell(lab: Lab, index: int, code: str, count: int) -> None:
    """Lab.run_cell with more time: importing scikit-learn and saving a model with skops
    can take longer than the usual wait on a busy machine."""
    lab.cells.nth(index).locator(".cm-content").click()
    lab.page.keyboard.type(code)
    assert lab.sources()[index] == code, lab.sources()
    lab.page.keyboard.press("Shift+Enter")
    prompt = lab.cells.nth(index).locator(".jp-InputPrompt")
    expect(prompt).to_have_text(f"[{count}]:", timeout=90_000)
    expect(lab.output(index).locator("[data-mime-type*='stderr']")).to_have_count(0)


def sidebar_width(lab: Lab) -> float:
    return lab.sidebar.evaluate("el => el.getBoundingClientRect().width")


def set_sidebar_width(lab: Lab, width: float) -> None:
    """Drag the handle between the main area and the right sidebar, as a person does."""
    handle = lab.page.evaluate(
        """() => {
            const right = document.querySelector('#jp-right-stack').getBoundingClientRect();
            const handles = document.querySelectorAll('#jp-main-split-panel > .lm-SplitPanel-handle');
            const h = [...handles].map(h => h.getBoundingClientRect())
                .find(r => Math.abs(r.right - right.left) <= 2);
            return {x: h.left + h.width / 2, y: h.top + h.height / 2, edge: right.right};
        }"""
    )
    target_x = handle["edge"] - width - 1
    lab.page.mouse.move(handle["x"], handle["y"])
    lab.page.mouse.down()
    lab.page.mouse.move(target_x, handle["y"], steps=5)
    lab.page.mouse.up()
    lab.page.wait_for_function(
        "w => Math.abs(document.querySelector('#cellops-sidebar').getBoundingClientRect().width"
        " - w) <= 4",
        arg=width,
    )


# What can go wrong in a view, found in the page: a list of sentences.
LAYOUT_PROBLEMS = """([headerButtons, scrollers]) => {
    const panel = document.querySelector('#cellops-sidebar');
    const box = panel.getBoundingClientRect();
    const problems = [];
    const name = el => el.tagName.toLowerCase() + '.' + [...el.classList].join('.');
    const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    if (panel.scrollWidth > panel.clientWidth + 1) {
        problems.push(`the panel overflows: scrollWidth ${panel.scrollWidth} > ${panel.clientWidth}`);
    }
    for (const b of panel.querySelectorAll(headerButtons)) {
        if (!shown(b)) continue;
        const r = b.getBoundingClientRect();
        for (let a = b.parentElement; a; a = a === panel ? null : a.parentElement) {
            const clip = a === panel || getComputedStyle(a).overflowX !== 'visible';
            const ar = a.getBoundingClientRect();
            if (clip && (r.left < ar.left - 1 || r.right > ar.right + 1)) {
                problems.push(`${name(b)} "${b.textContent.trim()}" (${r.left | 0}-${r.right | 0}) is cut by ${name(a)} (${ar.left | 0}-${ar.right | 0})`);
                break;
            }
        }
        if (r.height > 40) problems.push(`${name(b)} "${b.textContent.trim()}" wraps (${r.height | 0}px high)`);
    }
    for (const el of panel.querySelectorAll('*')) {
        if (!shown(el) || el.scrollWidth <= el.clientWidth + 1) continue;
        const st = getComputedStyle(el);
        if (st.overflowX === 'visible' || st.textOverflow === 'ellipsis') continue;
        if (el.closest(scrollers)) continue;  // code, outputs and tables scroll in their box
        problems.push(`${name(el)} is wider than its box: ${el.scrollWidth} > ${el.clientWidth}`);
    }
    return problems;
}"""

# Text colour against the first opaque background behind it (alpha blended), for every
# visible element holding text; answers those below 3:1.
UNREADABLE = """() => {
    const panel = document.querySelector('#cellops-sidebar');
    // rgb()/rgba() in 0-255, or color(srgb r g b / a) in 0-1 (what color-mix() computes to).
    const rgba = s => {
        const v = s.replace(/^color\\(srgb/, '').match(/[\\d.]+/g).map(Number);
        const c = s.startsWith('color(') ? [...v.slice(0, 3).map(x => x * 255), ...v.slice(3)] : v;
        return c.length === 3 ? [...c, 1] : c;
    };
    const lum = c => {
        const l = c.slice(0, 3).map(x => x / 255).map(x => x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4);
        return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
    };
    const over = (top, under) => top.slice(0, 3).map((x, i) => x * top[3] + under[i] * (1 - top[3]));
    const background = el => {
        const layers = [];
        for (let n = el; n; n = n.parentElement) {
            const c = rgba(getComputedStyle(n).backgroundColor);
            if (c[3] > 0) layers.push(c);
            if (c[3] >= 1) break;
        }
        let bg = [255, 255, 255];
        for (const c of layers.reverse()) bg = over(c, bg);
        return bg;
    };
    const bad = [];
    for (const el of panel.querySelectorAll('*')) {
        const text = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
        if (!text || el.getClientRects().length === 0 || el.closest('.cellops-outputs')) continue;
        if (el.matches(':disabled, .cellops-mod-placeholder, .cellops-mod-placeholder *')) continue;
        const bg = background(el);
        const fg = over(rgba(getComputedStyle(el).color), bg);
        const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
        const ratio = (hi + 0.05) / (lo + 0.05);
        if (ratio < 3) bad.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} "${text.slice(0, 30)}": ${ratio.toFixed(2)}:1`);
    }
    return bad;
}"""


# The first test also builds the session (kernel, scikit-learn, a model saved with skops).
@pytest.mark.timeout(400)
@pytest.mark.parametrize("theme", list(THEMES))
@pytest.mark.parametrize("width", ["default", "wide"])
def test_every_view_fits_and_reads_at_this_width_and_theme(
    session: tuple[Lab, float], theme: str, width: str
) -> None:
    lab, default = session
    lab.set_theme(THEMES[theme])
    lab.open_sidebar()
    set_sidebar_width(lab, default if width == "default" else WIDE_PX)
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    for view in [*VIEWS, *other_tabs(lab)]:
        try:
            view.show(lab)
        except (AssertionError, PlaywrightError) as exc:  # shoot what it looks like anyway
            problems[view.name] = [f"could not get to the view: {str(exc).splitlines()[0]}"]
        lab.page.locator("#jp-right-stack").screenshot(
            path=SHOTS / f"{view.name}-{width}-{theme}.png", animations="disabled"
        )
        found = lab.page.evaluate(LAYOUT_PROBLEMS, [HEADER_BUTTONS, CONTENT_SCROLLERS])
        found += lab.page.evaluate(UNREADABLE)
        if found:
            problems.setdefault(view.name, []).extend(found)
    assert not problems, problems
