"""SSRF through webhooks: without the admin setting no delivery reaches loopback, private,
link-local or metadata addresses, whether the URL names them literally (in any notation a
resolver accepts), through a name that resolves there, or through a redirect.

A real receiver listens on 127.0.0.1 in every case, so "refused" is checked where it
matters: the receiver's log stays empty after the dispatcher has recorded its (failed)
attempt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support import run_coroutine
from ..test_webhooks import SECRET, attempts, ping, start, wait_attempts
from ..webhook_receiving import Receiver
from .conftest import API, Team, team_db_url
from .seed import register

MAX_ATTEMPTS = ("--webhook-max-attempts", "3")


def team_without_private(db_url: str, tmp: Path) -> Team:
    """`cellops serve` with the default setting (private targets refused)."""
    team = Team(db_url, tmp / "artifacts", extra_args=("--webhook-backoff", "0.05", *MAX_ATTEMPTS))
    team.tokens = {"admin": team.add_user("admin", "admin"), "alice": team.add_user("alice")}
    team.start()
    return team


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    tmp = tmp_path_factory.mktemp(f"ssrf-{request.param}")
    team = team_without_private(team_db_url(request, tmp / "cellops.db"), tmp)
    yield team
    team.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def post_webhook(team: Team, url: str, events: list[str] | None = None) -> Any:
    body = {"url": url, "events": events or ["model_version.created"], "secret": SECRET}
    return team.as_("admin").request("POST", f"{API}/webhooks", json=body)


LITERALS = [
    "http://127.0.0.1:{port}/hook",
    "http://127.1:{port}/hook",
    "http://2130706433:{port}/hook",  # decimal
    "http://0x7f.1:{port}/hook",  # hex and short
    "http://0177.0.0.1:{port}/hook",  # octal
    "http://[::1]:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]:{port}/hook",
    "http://[64:ff9b::7f00:1]:{port}/hook",  # NAT64
    "http://0.0.0.0:{port}/hook",
    "http://0:{port}/hook",
    "http://10.0.0.1:{port}/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # CGNAT
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://[fd12:3456::1]/hook",  # ULA
    "https://127.0.0.1:{port}/hook",
    "file:///etc/passwd",
    "ftp://127.0.0.1:{port}/hook",
    "gopher://127.0.0.1:{port}/_POST",
    "javascript:alert(1)",
    "http:///hook",
    "http://user:pass@example.com/hook",
]


def test_refused_targets_are_400_at_registration_and_never_reached(
    guarded: Team, receiver: Receiver
) -> None:
    before = guarded.as_("admin").get(f"{API}/webhooks")["items"]
    for pattern in LITERALS:
        url = pattern.format(port=receiver.port)
        r = post_webhook(guarded, url)
        assert r.status_code == 400, (url, r.status_code, r.text)
        assert set(r.json()) == {"error", "detail"} and r.json()["error"].startswith("url:")
    assert guarded.as_("admin").get(f"{API}/webhooks")["items"] == before
    # Events happen; nothing was registered, nothing is sent.
    assert register(guarded.as_("alice"), "ssrf-literal").status_code == 201
    assert not receiver.requests


def test_a_registered_webhook_cannot_be_changed_into_a_refused_target(
    guarded: Team, receiver: Receiver
) -> None:
    """An edit is checked as a registration: no PATCH turns a public webhook inward."""
    admin = guarded.as_("admin")
    r = post_webhook(guarded, "https://hooks.example.com/cellops")
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    try:
        for pattern in LITERALS:
            url = pattern.format(port=receiver.port)
            r = admin.request("PATCH", f"{API}/webhooks/{hook}", json={"url": url})
            assert r.status_code == 400, (url, r.status_code, r.text)
            assert r.json()["error"].startswith("url:")
        listed = {w["id"]: w for w in admin.get(f"{API}/webhooks")["items"]}
        assert listed[hook]["url"] == "https://hooks.example.com/cellops"
        ping(guarded, hook)
        assert register(guarded.as_("alice"), "ssrf-patched").status_code == 201
        wait_attempts(guarded, hook, lambda items: len(items) >= 2)
        assert not receiver.requests
    finally:
        admin.request("DELETE", f"{API}/webhooks/{hook}")


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST"])
def test_a_name_resolving_to_loopback_gets_nothing(
    guarded: Team, receiver: Receiver, host: str
) -> None:
    r = post_webhook(guarded, f"http://{host}:{receiver.port}/hook")
    assert r.status_code == 201, r.text  # a name: checked when each attempt is sent
    hook = r.json()["id"]
    try:
        delivery = ping(guarded, hook)
        assert register(guarded.as_("alice"), f"ssrf-{host.lower()}").status_code == 201
        log = wait_attempts(guarded, hook, lambda items: len(items) >= 2)
        assert {a["status"] for a in log} == {"failed"}, log
        assert delivery in {a["id"] for a in log}
        for a in log:
            assert a["attempt"] == 1  # refused targets are not retried
            assert a["response_code"] is None
            assert "refused target" in a["error"] and "loopback" in a["error"], a["error"]
        assert not receiver.requests
        feed = guarded.as_("admin").get(f"{API}/activity")["items"]
        assert any(i["type"] == "webhook.failed" and i["data"]["webhook"] == hook for i in feed)
    finally:
        guarded.as_("admin").request("DELETE", f"{API}/webhooks/{hook}")


def test_redirects_are_not_followed(db_url: str, tmp_path: Path) -> None:
    """Even with private targets allowed (so the first hop is reachable), a 3xx is a failed
    attempt, not retried, and its Location receives nothing."""
    team = start(db_url, tmp_path, *MAX_ATTEMPTS)
    try:
        with Receiver() as target, Receiver() as redirector:
            redirector.redirect_to = target.url
            r = post_webhook(team, redirector.url, ["alias.moved"])
            assert r.status_code == 201, r.text
            hook = r.json()["id"]
            delivery = ping(team, hook)
            log = wait_attempts(team, hook, lambda items: bool(items))
            assert [(a["id"], a["status"], a["response_code"]) for a in log] == [
                (delivery, "failed", 302)
            ]
            assert "redirect" in log[0]["error"] and "not followed" in log[0]["error"]
            assert len(redirector.requests) == 1
            assert not target.requests
            assert len(attempts(team, hook)) == 1
            # Metadata addresses stay refused with the setting on.
            r = post_webhook(team, "http://169.254.169.254/latest/meta-data/")
            assert r.status_code == 400 and "metadata" in r.text
    finally:
        team.stop()


def test_a_name_that_rebinds_to_loopback_after_the_check_gets_nothing(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers a public address to the check and loopback to any
    later lookup. No DNS server can be made to do that here, so the event loop's resolver
    is replaced for this one attempt (the only stand-in in this module): the attempt must
    resolve once and connect to the address it checked, never to the receiver."""
    import asyncio
    import socket

    from cellops_server.webhooks.send import post

    answers = ["93.184.216.34", "127.0.0.1"]  # public first, loopback from then on
    lookups: list[str] = []

    async def rebinding(self: Any, host: str, port: int, **kw: Any) -> list[Any]:
        lookups.append(host)
        address = answers[min(len(lookups) - 1, 1)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", rebinding)
    url = f"http://rebind.example:{receiver.port}/hook"
    outcome = run_coroutine(post(url, "{}", {}, allow_private=False, timeout=1.0))
    assert lookups == ["rebind.example"]  # resolved once, for the check
    assert outcome.code is None and outcome.error  # the public address: no answer here
    assert receiver.requests == []
