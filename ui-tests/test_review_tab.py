"""Comments on cells in one JupyterLab (embedded mode, the Jupyter user is admin).

"Comment on cell" from the cell's context menu opens the Review tab on that cell with the
new-thread box focused; the cell gets a badge; the thread takes a reply, is resolved, and
is marked outdated once the cell's code changed and ran again. A hostile comment body
(script, onerror, javascript: link) renders inert.
"""

from __future__ import annotations

import re

from conftest import Lab
from playwright.sync_api import Locator, Route, expect

from tests.support import JupyterServer

API = "cellops/api/v1"
HOSTILE = (
    "<script>window.__pwned = 'script'</script>\n\n"
    '<img src="x" onerror="window.__pwned = \'img\'">\n\n'
    "[x](javascript:alert(1)) and [docs](https://jupyter.org) and **bold stays**"
)
RAW_HOSTILE_HTML = (
    "<script>window.__pwned = 'script'</script>"
    "<p><em>fine</em> <img src=x onerror=\"window.__pwned = 'img'\">"
    '<img src="/logout"><img src="javascript:window.__pwned = \'src\'">'
    "<a href=\"javascript:window.__pwned = 'href'\">click</a>"
    "<a href=\" jAvAsCrIpT:window.__pwned = 'spaced'\" onclick=\"window.__pwned = 'onclick'\">x</a>"
    '<a href="https://jupyter.org" data-commandlinker-command="apputils:reset">ok</a>'
    '<span style="position:fixed;inset:0">overlay</span></p>'
    "<iframe src=\"javascript:window.__pwned = 'iframe'\"></iframe>"
    "<svg onload=\"window.__pwned = 'svg'\"></svg><style>body{display:none}</style>"
    '<form action="/logout"><button>go</button></form>'
)


def wait_recorded(jupyter: JupyterServer, path: str, code: str) -> None:
    """The writer is asynchronous: wait until the cell's execution with ``code`` is stored."""
    jupyter.api.wait_for(
        "executions", lambda page: any(e["code"] == code for e in page["items"]), notebook=path
    )


def comment_group(lab: Lab, cell_id: str) -> Locator:
    return lab.sidebar.locator(f".cellops-review-cell[data-cell-id='{cell_id}']")


def test_comment_on_a_cell_reply_resolve_and_outdated(lab: Lab, jupyter: JupyterServer) -> None:
    lab.open()
    path = lab.new_notebook()
    lab.run_cell(0, "alpha = 0.1", 1)
    cell_id = lab.cell_ids()[0]
    wait_recorded(jupyter, path, "alpha = 0.1")
    lab.open_sidebar()

    # Right-click the cell > Comment on cell: the Review tab on it, the box focused.
    lab.cells.nth(0).locator(".jp-InputPrompt").click(button="right")
    lab.page.locator(".lm-Menu").get_by_text("Comment on cell", exact=True).click()
    expect(lab.sidebar.locator("button.cellops-tab[data-tab='review']")).to_have_attribute(
        "aria-selected", "true"
    )
    group = comment_group(lab, cell_id)
    box = group.locator(".cellops-thread-new textarea")
    expect(box).to_be_focused()
    lab.page.keyboard.type("Is **alpha** too small?")
    group.locator(".cellops-thread-new button.cellops-thread-send").click()

    thread = group.locator(".cellops-thread[data-target-kind='cell']")
    first = thread.locator(".cellops-comment").first
    expect(first.locator(".cellops-comment-body strong")).to_have_text("alpha")
    expect(first.locator(".cellops-comment-author")).not_to_be_empty()
    stored = jupyter.api.cellops("comments", notebook=path)["items"]
    assert [(c["body"], c["target"]["cell_id"]) for c in stored] == [
        ("Is **alpha** too small?", cell_id)
    ]

    # The cell's badge: one comment, unresolved.
    badge = lab.cells.nth(0).locator(".cellops-comment-badge")
    expect(badge).to_have_text("1")
    expect(badge).to_have_attribute("data-count", "1")
    expect(badge).to_have_attribute("data-unresolved", "1")
    expect(badge).to_have_class(re.compile(r"\bcellops-mod-unresolved\b"))
    lab.screenshot("commented")

    # Reply, then resolve: the badge counts both and stops calling for attention.
    thread.locator(".cellops-thread-reply textarea").fill("No: it converges.")
    thread.locator(".cellops-thread-reply button.cellops-thread-send").click()
    expect(thread.locator(".cellops-comment")).to_have_count(2)
    expect(thread.locator(".cellops-comment").nth(1)).to_contain_text("No: it converges.")
    expect(badge).to_have_attribute("data-count", "2")
    thread.locator("button.cellops-thread-resolve").click()
    expect(thread.locator("button.cellops-thread-resolve")).to_have_text("Reopen")
    expect(thread).to_have_class(re.compile(r"\bcellops-comment-resolved\b"))
    expect(badge).to_have_attribute("data-unresolved", "0")
    expect(badge).not_to_have_class(re.compile(r"\bcellops-mod-unresolved\b"))
    root = jupyter.api.cellops("comments", notebook=path)["items"][0]
    assert root["resolved"] is True and root["parent_id"] is None, root
    expect(thread.locator(".cellops-comment-outdated")).to_have_count(0)
    lab.screenshot("resolved")

    # The cell's code changes and runs again: the thread is marked outdated, live.
    lab.run_cell(0, "alpha = 0.5", 2, replace=True)
    expect(
        thread.locator(".cellops-comment").first.locator(".cellops-comment-outdated")
    ).to_be_visible()
    lab.screenshot("outdated")

    # A badge click brings the Review tab back on this cell from another tab; its header
    # button selects the cell in the notebook.
    lab.sidebar_tab("runs")
    badge.click()
    expect(group).to_be_visible()
    lab.run_cell(1, "beta = 2", 3)  # another cell becomes active
    group.locator(".cellops-review-jump").click()
    lab.page.wait_for_function(
        "id => window.jupyterapp.shell.currentWidget.content.activeCell?.model.id === id",
        arg=cell_id,
    )

    # An execution's detail has its own thread, under its outputs.
    lab.open_run(0)
    lab.sidebar.locator(".cellops-timeline .cellops-execution").first.click()
    detail = lab.sidebar.locator(".cellops-execution-detail")
    execution_thread = detail.locator(".cellops-thread[data-target-kind='execution']")
    expect(execution_thread).to_contain_text("No comments on this execution yet.")
    execution_thread.locator("button.cellops-thread-start").click()
    expect(execution_thread.locator(".cellops-thread-new textarea")).to_be_focused()
    lab.page.keyboard.type("Slow run.")
    lab.page.keyboard.press("Control+Enter")
    expect(execution_thread.locator(".cellops-comment-body")).to_have_text("Slow run.")
    shown = detail.locator(".cellops-detail-count").inner_text().strip("[] ")
    on_execution = [
        e
        for e in jupyter.api.cellops("executions", notebook=path)["items"]
        if str(e["execution_count"]) == shown
    ]
    assert len(on_execution) == 1, on_execution
    stored = jupyter.api.cellops("comments", execution=on_execution[0]["id"])["items"]
    assert [c["body"] for c in stored] == ["Slow run."], stored
    lab.screenshot("execution-thread")


def test_a_hostile_comment_renders_inert(lab: Lab, jupyter: JupyterServer) -> None:
    dialogs: list[str] = []
    lab.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    lab.open()
    path = lab.new_notebook()
    lab.run_cell(0, "x = 1", 1)
    cell_id = lab.cell_ids()[0]
    wait_recorded(jupyter, path, "x = 1")
    lab.open_sidebar()
    lab.sidebar_tab("review")
    scripts_before = lab.page.evaluate("() => document.scripts.length")

    # Another tab (here: the API) writes it; the open Review tab shows it live.
    r = jupyter.api.request(
        "POST",
        f"{API}/comments",
        params={"notebook": path},
        json={"target": {"kind": "cell", "notebook": path, "cell_id": cell_id}, "body": HOSTILE},
    )
    assert r.status_code == 201, r.text
    comment_id = r.json()["id"]
    body = lab.sidebar.locator(
        f".cellops-comment[data-comment-id='{comment_id}'] .cellops-comment-body"
    )
    expect(body.locator("strong")).to_have_text("bold stays")
    assert body.locator("script, iframe, object, embed, [onerror], [onload]").count() == 0
    links = body.locator("a")
    hrefs = links.evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert not [h for h in hrefs if h and re.match(r"\s*(javascript|data|vbscript):", h, re.I)]
    assert "https://jupyter.org" in hrefs, hrefs
    safe = body.locator("a[href='https://jupyter.org']")
    expect(safe).to_have_attribute("target", "_blank")
    expect(safe).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    # What is not a safe link stays text: the javascript: one is shown, not followed.
    expect(body).to_contain_text("javascript:alert(1)")
    # Raw HTML is stripped by the server's sanitizer: a script goes with its code.
    expect(body).not_to_contain_text("__pwned")
    expect(lab.cells.nth(0).locator(".cellops-comment-badge")).to_have_attribute("data-count", "1")
    # An onerror handler would have fired by the time the image failed to load; wait for
    # every image of the page to have settled rather than for a fixed time.
    lab.page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    assert lab.page.evaluate("() => window.__pwned") is None
    assert lab.page.evaluate("() => document.scripts.length") == scripts_before
    assert dialogs == [], dialogs
    lab.screenshot("hostile")

    # Defence in depth: were the server's HTML ever unsafe (a bug, a proxy), the page
    # sanitizes it again. Serve raw hostile HTML in place of the server's.
    def tamper(route: Route) -> None:
        answer = route.fetch()
        page = answer.json()
        for item in page["items"]:
            item["html"] = RAW_HOSTILE_HTML
        route.fulfill(response=answer, json=page)

    lab.page.route(re.compile(r".*/cellops/api/v1/comments\?notebook=.*"), tamper)
    r = jupyter.api.request(
        "POST",
        f"{API}/comments",
        params={"notebook": path},
        json={"target": {"kind": "cell", "notebook": path, "cell_id": cell_id}, "body": "hi"},
    )
    assert r.status_code == 201, r.text
    bodies = lab.sidebar.locator(".cellops-comment-body")
    expect(bodies).to_have_count(2)  # the live event refetched through the tampered route
    expect(bodies.locator("em")).to_have_count(2)  # harmless markup still renders
    kept = bodies.locator("script, iframe, style, svg, form, [onerror], [onclick], [style]")
    assert kept.count() == 0, kept.evaluate_all("es => es.map(e => e.outerHTML)")
    assert bodies.locator("img").count() == 0  # relative and javascript: sources dropped
    hrefs = bodies.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert hrefs == [None, None, "https://jupyter.org"] * 2, hrefs
    commandlinks = bodies.locator("[data-commandlinker-command]")
    assert commandlinks.count() == 0
    bodies.locator("a", has_text="click").first.click()
    lab.page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    assert lab.page.evaluate("() => window.__pwned") is None
    assert lab.page.evaluate("() => document.scripts.length") == scripts_before
    assert dialogs == [], dialogs
