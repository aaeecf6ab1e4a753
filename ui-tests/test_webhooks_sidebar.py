"""Issue 13 in JupyterLab: an admin manages the team's webhooks from the Activity tab.

The admin (embedded mode: the Jupyter user is the admin of their own store) opens the
collapsed Webhooks section, is told next to the form why a non-http URL is refused,
registers a receiver on loopback (the session's lab allows private targets:
``--CellopsConfig.webhook_allow_private_targets=True`` in conftest.py), sends a test and
sees the delivery in the table — delivered, code 200 — while the receiver checks the
signature with the secret the form generated; then deletes it after confirming. The admin
edits a webhook in place: Cancel sends nothing; Save sends only what changed (new events, a
new generated secret) and the next delivery is signed with the new secret; a refused URL is
explained in the edit form, which stays open, and the webhook keeps its URL. A team member
who is not an admin never sees the section (and the server refuses them anyway).

Screenshots: ui-tests/artifacts/webhooks_*.png, light and dark.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import BENIGN_CONSOLE_ERRORS, ConsoleWatcher, Lab, member_lab
from playwright.sync_api import Browser, expect

from tests.support import JupyterServer, TeamBackend

API = "cellops/api/v1"
# The refused URL answers 400 (the point of that step), which Chromium logs as "Failed to
# load resource"; only that message, only while that step runs, is expected.
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 400")


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers 200 and keeps what it got."""

    url: str
    got: list[Delivery] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            box.got.append(Delivery(dict(self.headers.items()), body))
            box.arrived.set()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/cellops")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


def signature_ok(delivery: Delivery, secret: str) -> bool:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``, as issue 13 says."""
    timestamp = delivery.headers["X-Cellops-Timestamp"]
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + delivery.body, hashlib.sha256)
    return hmac.compare_digest(delivery.headers["X-Cellops-Signature"], f"sha256={mac.hexdigest()}")


def test_admin_adds_tests_and_deletes_a_webhook(
    lab: Lab, jupyter: JupyterServer, receiver: Receiver
) -> None:
    sidebar = lab.open_sidebar()
    lab.sidebar_tab("activity")
    section = sidebar.locator("details.cellops-webhooks")
    expect(section).to_be_visible()
    # Collapsed by default, with the count: out of the way of the feed.
    assert section.evaluate("d => d.open") is False
    expect(section.locator(".cellops-webhooks-count")).to_have_text("0")
    section.locator("summary").click()
    form = section.locator("form.cellops-webhook-form")
    expect(form).to_be_visible()
    expect(section.locator(".cellops-webhooks-list .cellops-empty")).to_contain_text(
        "No webhooks yet"
    )

    # A URL that is not http(s): the server's answer, next to the form.
    form.locator(".cellops-webhook-url-input").fill("ftp://example.com/hook")
    form.locator(".cellops-webhook-event[value='alias.moved']").check()
    form.locator(".cellops-webhook-secret").fill("s3cret")
    BENIGN_CONSOLE_ERRORS.append(REFUSED)
    try:
        form.locator("button.cellops-webhook-add").click()
        error = form.locator(".cellops-webhook-form-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("http")
    finally:
        BENIGN_CONSOLE_ERRORS.remove(REFUSED)
    expect(section.locator(".cellops-webhook")).to_have_count(0)
    lab.screenshot("refused")

    # The loopback receiver, with a generated secret (shown, to copy into the receiver).
    form.locator(".cellops-webhook-url-input").fill(receiver.url)
    form.locator(".cellops-webhook-event[value='run.finished']").check()
    form.locator("button.cellops-webhook-generate").click()
    secret_input = form.locator(".cellops-webhook-secret")
    expect(secret_input).to_have_attribute("type", "text")
    secret = secret_input.input_value()
    assert re.fullmatch(r"[0-9a-f]{64}", secret), secret
    form.locator("button.cellops-webhook-add").click()
    hook = section.locator(".cellops-webhook")
    expect(hook).to_have_count(1)
    expect(error).to_be_hidden()
    expect(hook.locator(".cellops-webhook-url")).to_have_text(receiver.url)
    events = hook.locator(".cellops-webhook-events")
    expect(events).to_contain_text("alias.moved")
    expect(events).to_contain_text("run.finished")
    expect(hook.locator(".cellops-webhook-last")).to_have_text("no delivery yet")
    expect(section.locator(".cellops-webhooks-count")).to_have_text("1")
    expect(secret_input).to_have_value("")  # the secret is not left on screen

    # Send test: the delivery shows in the table once the receiver answered.
    hook.locator("button.cellops-webhook-test").click()
    row = hook.locator(".cellops-webhook-delivery").first
    expect(row).to_have_attribute("data-status", "delivered")
    expect(row.locator(".cellops-delivery-status")).to_have_text("delivered")
    expect(row.locator(".cellops-delivery-code")).to_have_text("200")
    expect(row.locator(".cellops-delivery-attempt")).to_have_text("1")
    expect(row.locator(".cellops-delivery-duration")).to_contain_text("ms")
    expect(hook.locator(".cellops-webhook-last")).to_have_attribute("data-status", "delivered")
    expect(hook.locator(".cellops-webhook-last-code")).to_have_text("200")
    assert receiver.arrived.wait(10)
    delivery = receiver.got[0]
    assert delivery.headers["X-Cellops-Delivery"] == row.get_attribute("data-id")
    assert signature_ok(delivery, secret), delivery.headers
    assert json.loads(delivery.body)["type"] == delivery.headers["X-Cellops-Event"]
    expect(row.locator(".cellops-delivery-event")).to_have_text(delivery.headers["X-Cellops-Event"])
    lab.screenshot("delivered-light")
    lab.set_theme("JupyterLab Dark")
    try:
        lab.screenshot("delivered-dark")
    finally:
        lab.set_theme("JupyterLab Light")

    # Delete, after confirming; cancelling keeps it.
    hook.locator("button.cellops-webhook-delete").click()
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog).to_contain_text(receiver.url)
    dialog.locator("button.jp-mod-reject").click()
    expect(dialog).to_be_hidden()
    expect(hook).to_have_count(1)
    hook.locator("button.cellops-webhook-delete").click()
    lab.screenshot("confirm-delete")
    Lab.accept(dialog, "Delete")
    expect(section.locator(".cellops-webhook")).to_have_count(0)
    expect(section.locator(".cellops-webhooks-count")).to_have_text("0")
    assert jupyter.api.get(f"{API}/webhooks")["items"] == []


def test_admin_edits_a_webhook(lab: Lab, jupyter: JupyterServer, receiver: Receiver) -> None:
    old_secret = "the-old-secret"
    r = jupyter.api.request(
        "POST",
        f"{API}/webhooks",
        json={"url": receiver.url, "events": ["run.finished", "alias.moved"], "secret": old_secret},
    )
    assert r.status_code == 201, r.text
    hook_id = r.json()["id"]
    patches: list[str | None] = []
    lab.page.on(
        "request",
        lambda req: patches.append(req.post_data) if req.method == "PATCH" else None,
    )
    try:
        sidebar = lab.open_sidebar()
        lab.sidebar_tab("activity")
        section = sidebar.locator("details.cellops-webhooks")
        section.locator("summary").click()
        hook = section.locator(f".cellops-webhook[data-id='{hook_id}']")
        expect(hook.locator(".cellops-webhook-events")).to_have_text("run.finished, alias.moved")

        # Edit: the form opens inside the webhook, filled in from it; the secret is empty.
        edit_button = hook.locator("button.cellops-webhook-edit")
        edit_button.click()
        form = hook.locator("form.cellops-webhook-edit-form")
        expect(form).to_be_visible()
        expect(edit_button).to_be_disabled()
        url_input = form.locator(".cellops-webhook-url-input")
        expect(url_input).to_have_value(receiver.url)
        expect(url_input).to_be_focused()
        checked = form.locator(".cellops-webhook-event:checked")
        expect(checked).to_have_count(2)
        expect(form.locator(".cellops-webhook-event[value='run.finished']")).to_be_checked()
        expect(form.locator(".cellops-webhook-event[value='alias.moved']")).to_be_checked()
        secret_input = form.locator(".cellops-webhook-secret")
        expect(secret_input).to_have_value("")
        expect(secret_input).to_have_attribute("placeholder", re.compile("keep the current"))
        save = form.locator("button.cellops-webhook-save")
        # Nothing changed, nothing to save; a change undone is no change either.
        expect(save).to_be_disabled()
        review_box = form.locator(".cellops-webhook-event[value='review.submitted']")
        review_box.check()
        expect(save).to_be_enabled()
        review_box.uncheck()
        expect(save).to_be_disabled()

        # Cancel closes the form and sends nothing.
        review_box.check()
        url_input.fill("https://elsewhere.example.com/hook")
        form.locator("button.cellops-webhook-cancel").click()
        expect(form).to_have_count(0)
        expect(edit_button).to_be_enabled()
        expect(hook.locator(".cellops-webhook-url")).to_have_text(receiver.url)
        expect(hook.locator(".cellops-webhook-events")).to_have_text("run.finished, alias.moved")
        assert patches == []

        # Change the events (untick one, tick another) and generate a new secret.
        edit_button.click()
        expect(url_input).to_have_value(receiver.url)  # what was typed before is gone
        expect(review_box).not_to_be_checked()
        form.locator(".cellops-webhook-event[value='alias.moved']").uncheck()
        review_box.check()
        form.locator("button.cellops-webhook-generate").click()
        expect(secret_input).to_have_attribute("type", "text")
        new_secret = secret_input.input_value()
        assert re.fullmatch(r"[0-9a-f]{64}", new_secret), new_secret
        lab.screenshot("edit")
        save.click()
        expect(form).to_have_count(0)
        expect(hook.locator(".cellops-webhook-events")).to_have_text(
            "run.finished, review.submitted"
        )
        expect(hook.locator(".cellops-webhook-url")).to_have_text(receiver.url)
        # Only what changed was sent: the URL stayed as it was.
        assert [json.loads(p or "") for p in patches] == [
            {"events": ["run.finished", "review.submitted"], "secret": new_secret}
        ]
        listed = jupyter.api.get(f"{API}/webhooks")["items"]
        assert [(w["url"], w["events"]) for w in listed if w["id"] == hook_id] == [
            (receiver.url, ["run.finished", "review.submitted"])
        ]

        # The next delivery is signed with the new secret.
        hook.locator("button.cellops-webhook-test").click()
        row = hook.locator(".cellops-webhook-delivery").first
        expect(row).to_have_attribute("data-status", "delivered")
        expect(row.locator(".cellops-delivery-code")).to_have_text("200")
        assert receiver.arrived.wait(10)
        delivery_id = row.get_attribute("data-id")
        delivery = next(d for d in receiver.got if d.headers["X-Cellops-Delivery"] == delivery_id)
        assert signature_ok(delivery, new_secret), delivery.headers
        assert not signature_ok(delivery, old_secret)

        # A refused URL: the server's answer in the form, which stays open as typed.
        edit_button.click()
        url_input.fill("ftp://x")
        BENIGN_CONSOLE_ERRORS.append(REFUSED)
        try:
            save.click()
            error = form.locator(".cellops-webhook-form-error")
            expect(error).to_be_visible()
            expect(error).to_contain_text("http")
        finally:
            BENIGN_CONSOLE_ERRORS.remove(REFUSED)
        expect(form).to_be_visible()
        expect(url_input).to_have_value("ftp://x")
        expect(hook.locator(".cellops-webhook-url")).to_have_text(receiver.url)
        # The add form at the bottom is not where the error went.
        expect(
            section.locator("form.cellops-webhook-form .cellops-webhook-form-error")
        ).to_be_hidden()
        lab.screenshot("edit-refused")
        form.locator("button.cellops-webhook-cancel").click()
        expect(form).to_have_count(0)
        expect(hook.locator(".cellops-webhook-url")).to_have_text(receiver.url)
        assert len(patches) == 2, patches
        listed = jupyter.api.get(f"{API}/webhooks")["items"]
        assert [w["url"] for w in listed if w["id"] == hook_id] == [receiver.url]
    finally:
        # The session's lab is shared: leave no webhook behind for the other tests.
        jupyter.api.request("DELETE", f"{API}/webhooks/{hook_id}")


@pytest.fixture
def alice_lab(tmp_path: Path) -> Iterator[tuple[TeamBackend, JupyterServer, str]]:
    """A team backend, and the JupyterLab of alice, an editor (not an admin)."""
    with member_lab(tmp_path, f"sqlite:///{tmp_path / 'team.db'}", "alice") as lab:
        yield lab


def test_a_member_who_is_not_an_admin_does_not_see_webhooks(
    browser: Browser, alice_lab: tuple[TeamBackend, JupyterServer, str]
) -> None:
    backend, server, token = alice_lab
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    watcher = ConsoleWatcher(context)
    asked: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda r: asked.append(r.url) if f"/{API}/webhooks" in r.url else None)
        page.goto(f"{server.url}/lab?token={server.token}")
        lab = Lab(page, server, "webhooks-member")
        lab.open()
        sidebar = lab.open_sidebar()
        lab.sidebar_tab("activity")
        # The tab is there and knows who alice is (her inbox loaded) ...
        expect(sidebar.locator(".cellops-inbox .cellops-empty")).to_be_visible()
        expect(sidebar.locator(".cellops-activity-feed")).to_be_visible()
        # ... and shows no webhooks, nor asks for them.
        expect(sidebar.locator(".cellops-webhooks")).to_be_hidden()
        lab.screenshot("member")
        assert asked == [], asked
        watcher.check("a member opened the Activity tab")
    finally:
        context.close()
    # The server refuses her too: the UI hiding it is not the guard.
    r = backend.api(token).request("GET", f"{API}/webhooks")
    assert r.status_code == 403, r.text
