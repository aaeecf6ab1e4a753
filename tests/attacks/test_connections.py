"""Connection-level and cross-site attacks, on the team backend (`cellops serve`), a member's
Jupyter server (forwarding to it) and an embedded Jupyter server (its own store)."""

from __future__ import annotations

import hashlib
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from ..routes import concrete_routes
from ..support import Api, JupyterServer
from .conftest import API, Team

MODEL = b"a model the attacks must not touch"
SHA = hashlib.sha256(MODEL).hexdigest()
SMALL_BODY = b"x" * 100_000  # refused, then read and dropped: the connection stays usable
SLOW_CLIENTS = 8
TRICKLE_ROUNDS = 4  # one byte per slow client every TRICKLE_PAUSE seconds
TRICKLE_PAUSE = 0.5
FAST = 0.5  # seconds: what "still answers fast" means while slow clients hang on


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = JupyterServer(tmp_path_factory.mktemp("embedded")).start()
    register_iris(server.api)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def team_iris(team: Team) -> Api:
    api = team.as_("alice")
    register_iris(api)
    return api


def register_iris(api: Api) -> None:
    """`iris` version 1 with the alias champion: what a forged request would change."""
    assert api.put_artifact(MODEL).status_code in (200, 201)
    body = {"artifact": SHA, "flavor": "custom"}
    assert api.request("POST", f"{API}/models/iris/versions", json=body).status_code == 201
    r = api.request("PUT", f"{API}/models/iris/aliases/champion", json={"version": 1})
    assert r.status_code == 200, r.text


def jupyter(request: pytest.FixtureRequest, where: str) -> tuple[JupyterServer, Api]:
    """A Jupyter server (a member's or an embedded one) and a client that reads the truth.
    (Tests using it take `team`, so that the member's store is known; the embedded server
    is the same for both.)"""
    if where == "member":
        return request.getfixturevalue("alice"), request.getfixturevalue("team_iris")
    server = request.getfixturevalue("embedded")
    return server, server.api


def host_of(url: str) -> str:
    return url.removeprefix("http://")


# -- refusals and keep-alive connections ---------------------------------------------------


def assert_same_connection_still_answers(
    conn: http.client.HTTPConnection, headers: dict[str, str]
) -> None:
    sock = conn.sock
    conn.request("GET", f"/{API}/status", headers=headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    assert conn.sock is sock, "the connection was not kept after the refusal"


def test_a_refused_upload_leaves_the_backends_keep_alive_connection_usable(team: Team) -> None:
    conn = http.client.HTTPConnection(host_of(team.url), timeout=10)
    vera = {"Authorization": f"token {team.tokens['vera']}"}
    for headers, status in ((vera, 403), ({}, 401)):  # a viewer; no token at all
        conn.request("PUT", f"/{API}/artifacts/{SHA}", body=SMALL_BODY, headers=headers)
        response = conn.getresponse()
        assert response.status == status and json.loads(response.read())["error"]
        assert_same_connection_still_answers(conn, vera)
    conn.close()
    assert team.as_("vera").request("GET", f"{API}/artifacts/{SHA}").status_code == 404


@pytest.mark.parametrize("where", ["member", "embedded"])
def test_a_refused_upload_leaves_a_jupyter_servers_keep_alive_connection_usable(
    request: pytest.FixtureRequest, team: Team, where: str
) -> None:
    server, truth = jupyter(request, where)
    conn = http.client.HTTPConnection(host_of(server.url), timeout=10)
    refused = [
        ({}, 401),  # signed out: no token, no cookie
        ({**server.api.headers, "Host": "evil.example"}, 403),  # DNS rebinding
    ]
    for headers, status in refused:
        conn.request("PUT", f"/{API}/artifacts/{'0' * 64}", body=SMALL_BODY, headers=headers)
        response = conn.getresponse()
        assert response.status == status and json.loads(response.read())["error"]
        assert_same_connection_still_answers(conn, server.api.headers)
    conn.close()
    assert truth.request("GET", f"{API}/artifacts/{'0' * 64}").status_code == 404


def raw_exchange(url: str, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send a request head (no body), read the answer, then what follows on the
    connection: b"" when the server closed it cleanly."""
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed without an answer: {data!r}"
            data += chunk
        start, _, body = data.partition(b"\r\n\r\n")
        lines = start.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            body += sock.recv(65536)
        after = sock.recv(1)  # raises on a reset, times out if the connection stayed open
        return int(lines[0].split()[1]), headers, after


def head(method: str, path: str, token: str, **headers: str) -> str:
    lines = [f"{method} /{API}/{path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: token {token}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def test_a_refused_body_too_large_to_drain_is_answered_with_connection_close(
    team: Team, alice: JupyterServer
) -> None:
    """Not worth reading: the server answers at once, says it closes, and closes cleanly."""
    big = str(3 * 1024**3)
    cases = [
        (team.url, head("PUT", f"artifacts/{SHA}", team.tokens["alice"], Content_Length=big), 413),
        # Not sent yet (the client waits for 100 Continue): refused before it is.
        (
            team.url,
            head(
                "PUT",
                f"artifacts/{SHA}",
                team.tokens["vera"],
                Content_Length=str(len(SMALL_BODY)),
                Expect="100-continue",
            ),
            403,
        ),
        (alice.url, head("PUT", f"artifacts/{SHA}", alice.token, Content_Length=big), 413),
        (
            alice.url,
            head(
                "POST",
                "models/iris/versions",
                alice.token,
                Content_Length=str(65 * 1024**2),
                Content_Type="application/json",
            ),
            413,
        ),
    ]
    for url, request_head, status in cases:
        answer, headers, after = raw_exchange(url, request_head)
        assert answer == status, (request_head, answer)
        assert headers.get("connection") == "close", (request_head, headers)
        assert after == b"", request_head


# -- slow clients ---------------------------------------------------------------------------


@contextmanager
def trickling(url: str, head: bytes, rounds: int) -> Iterator[queue.Queue[int]]:
    """SLOW_CLIENTS connections that send ``head`` then one byte per client every
    TRICKLE_PAUSE seconds; yields a queue announcing each round sent."""
    port = int(url.rsplit(":", 1)[1])
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(SLOW_CLIENTS)]
    rounds_sent: queue.Queue[int] = queue.Queue()
    stop = threading.Event()

    def trickle() -> None:
        for sock in socks:
            sock.sendall(head)
        for n in range(rounds):
            for sock in socks:
                sock.sendall(b"a")
            rounds_sent.put(n)
            if stop.wait(TRICKLE_PAUSE):
                return

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        yield rounds_sent
    finally:
        stop.set()
        thread.join()
        for sock in socks:
            sock.close()


def timed_get(url: str, headers: dict[str, str]) -> float:
    started = time.monotonic()
    r = requests.get(url, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return time.monotonic() - started


def endpoints(
    where: str, team: Team, alice: JupyterServer
) -> tuple[str, dict[str, str], list[str]]:
    """The server under attack, a token for it, and the URLs that must stay fast."""
    if where == "backend":
        headers = {"Authorization": f"token {team.tokens['alice']}"}
        return team.url, headers, [f"{team.url}/{API}/status"]
    # A member's server answers /status itself and forwards /models.
    return alice.url, alice.api.headers, [f"{alice.url}/{API}/status", f"{alice.url}/{API}/models"]


def assert_stays_fast(
    rounds_sent: queue.Queue[int], headers: dict[str, str], urls: list[str]
) -> None:
    for _ in range(TRICKLE_ROUNDS):
        rounds_sent.get(timeout=10)
        for url in urls:
            assert timed_get(url, headers) < FAST, url


@pytest.mark.parametrize("where", ["backend", "member"])
def test_slow_headers_do_not_hold_up_other_requests(
    team: Team, alice: JupyterServer, team_iris: Api, where: str
) -> None:
    url, headers, fast = endpoints(where, team, alice)
    slow_head = f"GET /{API}/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode()
    with trickling(url, slow_head, TRICKLE_ROUNDS) as rounds_sent:
        assert_stays_fast(rounds_sent, headers, fast)


@pytest.mark.parametrize("where", ["backend", "member"])
def test_slow_uploads_do_not_hold_up_other_requests(
    team: Team, alice: JupyterServer, team_iris: Api, where: str
) -> None:
    url, headers, fast = endpoints(where, team, alice)
    token = headers["Authorization"].split()[1]
    upload = head("PUT", f"artifacts/{'1' * 64}", token, Content_Length="1000")
    with trickling(url, upload.encode(), TRICKLE_ROUNDS) as rounds_sent:
        assert_stays_fast(rounds_sent, headers, fast)
    assert timed_get(fast[-1], headers) < FAST


# -- cross-site requests ------------------------------------------------------------------


def login_cookies(server: JupyterServer) -> requests.cookies.RequestsCookieJar:
    """The cookie a browser keeps once signed in to Jupyter with the token."""
    r = requests.get(f"{server.url}/api/status", headers=server.api.headers, timeout=10)
    assert r.status_code == 200 and r.cookies, "Jupyter set no login cookie"
    return r.cookies


def forged_requests(url: str) -> list[tuple[str, str, dict[str, Any]]]:
    """What a page elsewhere can make a browser send, login cookie included."""
    model = f"{url}/{API}/models/iris"
    version = {"artifact": SHA, "flavor": "custom"}
    return [
        ("DELETE", f"{model}/aliases/champion", {}),
        ("PUT", f"{model}/aliases/champion", {"json": {"version": 2}}),
        ("POST", f"{model}/versions", {"json": version}),
        # A cross-site <form> posts text/plain, with an Origin header.
        (
            "POST",
            f"{model}/versions",
            {
                "data": json.dumps(version),
                "headers": {"Content-Type": "text/plain", "Origin": "http://evil.example"},
            },
        ),
        ("PUT", f"{url}/{API}/artifacts/{SHA}", {"data": MODEL}),
    ]


@pytest.mark.parametrize("where", ["member", "embedded"])
def test_a_cross_site_post_with_the_login_cookie_but_no_xsrf_token_is_refused(
    request: pytest.FixtureRequest, team: Team, where: str
) -> None:
    server, truth = jupyter(request, where)
    before = truth.get(f"{API}/models/iris")
    browser = requests.Session()
    browser.cookies = login_cookies(server)
    assert browser.get(f"{server.url}/{API}/models/iris", timeout=10).status_code == 200
    for method, url, kwargs in forged_requests(server.url):
        r = browser.request(method, url, timeout=10, **kwargs)
        assert r.status_code in (403, 404), (method, url, r.status_code, r.text)
        assert r.json()["error"]
    assert truth.get(f"{API}/models/iris") == before
    assert len(truth.get(f"{API}/models/iris/versions")["items"]) == 1

    # The same browser with the XSRF token (as JupyterLab sends it) is let through.
    browser.cookies.set("_xsrf", "c0ffee" * 6)
    r = browser.put(
        f"{server.url}/{API}/models/iris/aliases/champion",
        json={"version": 1},
        headers={"X-XSRFToken": "c0ffee" * 6},
        timeout=10,
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("where", ["member", "embedded"])
def test_a_request_for_a_foreign_host_is_refused(
    request: pytest.FixtureRequest, team: Team, where: str
) -> None:
    """DNS rebinding: evil.example resolves to 127.0.0.1, so the browser's requests reach
    Jupyter with `Host: evil.example`. Jupyter (allow_remote_access off, as when it listens
    on 127.0.0.1) refuses them, whatever they carry."""
    server, truth = jupyter(request, where)
    before = truth.get(f"{API}/models/iris")
    port = server.url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}"):
        headers = {**server.api.headers, "Host": host}
        for method in ("GET", "DELETE"):
            r = requests.request(
                method, f"{server.url}/{API}/models/iris/aliases/champion", headers=headers
            )
            assert r.status_code == 403, (host, method, r.text)
    assert truth.get(f"{API}/models/iris") == before


@pytest.mark.parametrize(("method", "path"), concrete_routes())
def test_every_route_refuses_a_request_without_a_token_through_a_member_server(
    alice: JupyterServer, method: str, path: str
) -> None:
    """The backend's side is tests/test_team.py's test_every_backend_route_needs_a_valid_token.
    A request without credentials is answered 401 (Jupyter itself says 403) before
    anything is forwarded."""
    r = requests.request(method, f"{alice.url}/{API}/{path}", timeout=10)
    assert r.status_code == 401 and "authentication required" in r.json()["error"], r.text
