"""Bad input that would cost the server more than it costs the client, or answer 5xx.

- a large invalid body answered with an error that repeated it (a 60 MB body answered
  252 MB); a body of any size buffered and parsed on the event loop (200 MB froze
  Jupyter for 9.5 s) — now capped per endpoint before it is read, answered 413;
- JSON nested past the parser's recursion, crafted pagination cursors, integers past the
  store's columns (in paths and bodies), times that overflow once in UTC, and a lineage
  cell nested past Python's parser: each a 500 or 503 before, now a 400 (or a lineage
  notebook that keeps the unreadable cell);
- a 405 that did not say which methods are allowed; an OpenAPI document that did not
  state the name, alias and cursor patterns.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import select
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from ..records import execution, run
from ..support import Api, JupyterServer
from .conftest import Team
from .seed import API, ARTIFACT_SHA, ingest, register, seed_history

MiB = 1024 * 1024
PAGED = ["notebooks", "runs", "runs/{run}/executions", "executions", "versions", "models",
         "models/iris/versions"]  # fmt: skip
# The type of each position of a page's cursor key: (t)ime or (i)nteger.
KEYS = {"notebooks": "ti", "runs": "i", "runs/{run}/executions": "ii", "executions": "i",
        "versions": "i", "models": "ti", "models/iris/versions": "i"}  # fmt: skip
NOTEBOOK = "attacked.ipynb"


@pytest.fixture(scope="module")
def seeded(team: Team) -> tuple[Team, int]:
    """A notebook with a run of three executions (three versions) and a model with two
    versions, so every paged list has something to page through; answers the run's id."""
    alice = team.as_("alice")
    run_id = seed_history(alice, NOTEBOOK, "amplification-run")
    seed_history(alice, "other.ipynb", "other-run", executions=1)
    for name in ("iris", "iris", "rose"):
        assert register(alice, name).status_code == 201
    return team, run_id


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """An embedded Jupyter server (its own SQLite store, Jupyter's token and XSRF)."""
    server = JupyterServer(tmp_path_factory.mktemp("amplification-jupyter")).start()
    yield server
    server.stop()


# -- raw HTTP: what a client that sends only the head, or a body in chunks, sees -----------


def open_request(base: str, method: str, path: str, headers: dict[str, str]) -> socket.socket:
    """A connection on which the request head (only) of ``method path`` has been sent."""
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    head = f"{method} /{path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall((head + "\r\n").encode())
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, Any]]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(body)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def auth(api: Api) -> dict[str, str]:
    return dict(api.headers)


# -- body size -------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [str(200 * MiB), "9" * 5000], ids=["200MB", "5000-digits"])
@pytest.mark.parametrize("path", ["logs", "models/iris/versions", "ingest"])
def test_an_oversized_body_is_refused_before_it_is_sent(
    seeded: tuple[Team, int], path: str, length: str
) -> None:
    """200 MB announced: a 413 with the limit comes at once, without waiting for the body,
    and says the connection closes (its unread body can never be taken for a request)."""
    team, _ = seeded
    headers = {**auth(team.as_("alice")), "Content-Type": "application/json",
               "Content-Length": length}  # fmt: skip
    started = time.monotonic()
    sock = open_request(team.url, "POST", f"{API}/{path}", headers)
    status, response_headers, body = read_response(sock)
    assert time.monotonic() - started < 2
    assert status == 413, body
    # Each endpoint's own limit: a registration may carry a training summary (2 MiB).
    limits = {"logs": MiB, "models/iris/versions": 2 * MiB, "ingest": 64 * MiB}
    assert body["detail"]["limit"] == limits[path] and "too large" in body["error"]
    assert response_headers.get("connection") == "close"
    assert closed_by_server(sock)
    sock.close()


def test_an_oversized_body_is_refused_by_a_jupyter_server_too(jupyter: JupyterServer) -> None:
    headers = {**auth(jupyter.api), "Content-Type": "application/json",
               "Content-Length": str(200 * MiB)}  # fmt: skip
    started = time.monotonic()
    sock = open_request(jupyter.url, "PUT", f"{API}/settings", headers)
    status, response_headers, body = read_response(sock)
    assert time.monotonic() - started < 2 and status == 413, body
    assert body["detail"] == {"limit": MiB}
    assert response_headers.get("connection") == "close"
    sock.close()
    assert jupyter.api.cellops("settings")["tracking"] is True  # nothing changed


def test_a_body_without_a_token_is_refused_before_its_size(jupyter: JupyterServer) -> None:
    """Jupyter's authentication still comes first (and with it its XSRF check): a 401."""
    headers = {"Content-Type": "application/json", "Content-Length": str(200 * MiB)}
    sock = open_request(jupyter.url, "PUT", f"{API}/settings", headers)
    status, _, body = read_response(sock)
    sock.close()
    assert status == 401 and "authentication required" in body["error"]


@pytest.mark.parametrize("server", ["team", "jupyter"])
def test_a_chunked_body_is_cut_off_at_the_limit(
    server: str, seeded: tuple[Team, int], jupyter: JupyterServer
) -> None:
    """No Content-Length: the server stops reading at the endpoint's limit (1 MiB for
    POST /logs) and answers 413 while the client still has most of its 32 MiB to send."""
    base, api = (seeded[0].url, seeded[0].as_("alice")) if server == "team" else (
        jupyter.url, jupyter.api)  # fmt: skip
    headers = {**auth(api), "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    sock = open_request(base, "POST", f"{API}/logs", headers)
    chunk = b"x" * (64 * 1024)
    sent = 0
    try:
        while sent < 32 * MiB and not select.select([sock], [], [], 0)[0]:  # until it answers
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # it answered and closed while we were sending: read what it said
    status, response_headers, body = read_response(sock)
    sock.close()
    assert status == 413 and body["detail"] == {"limit": MiB}, body
    assert response_headers.get("connection") == "close"
    # What the client got rid of: the 1 MiB read, plus what the sockets' buffers hold.
    assert sent < 16 * MiB, f"the answer came only after {sent} bytes of 32 MiB were sent"


def test_a_refused_body_leaves_its_connection_usable(seeded: tuple[Team, int]) -> None:
    """A body a little over the limit is read and dropped, then refused: the next request
    on the same keep-alive connection is answered, not mistaken for the body's bytes."""
    team, _ = seeded
    url = urlsplit(team.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    headers = {**auth(team.as_("alice")), "Content-Type": "application/json"}
    conn.request("POST", f"/{API}/logs", body=b"{" + b" " * (2 * MiB) + b"}", headers=headers)
    refused = conn.getresponse()
    assert refused.status == 413 and json.loads(refused.read())["detail"] == {"limit": MiB}
    conn.request("GET", f"/{API}/status", headers=headers)
    after = conn.getresponse()
    assert after.status == 200 and json.loads(after.read())["mode"] == "team-backend"
    conn.close()


def test_status_stays_fast_while_a_huge_body_is_refused(jupyter: JupyterServer) -> None:
    """A client pushing 100 MB of valid JSON at a Jupyter server: refused at its head, so
    the server keeps answering everyone else as fast as before."""
    huge = b'{"description": "' + b"a" * (100 * MiB) + b'"}'
    url = f"{jupyter.url}/{API}/models/iris/versions/1"
    headers = {**jupyter.api.headers, "Content-Type": "application/json"}
    with requests.Session() as session:
        started = time.monotonic()
        answer: int | None
        try:
            answer = session.patch(url, data=huge, headers=headers, timeout=60).status_code
        except requests.ConnectionError:
            answer = None  # refused while still sending; the status below is what matters
        refused_after = time.monotonic() - started
    latencies = []
    for _ in range(5):
        started = time.monotonic()
        assert jupyter.api.cellops("status")["mode"] == "embedded"
        latencies.append(time.monotonic() - started)
    assert answer in (413, None)
    assert refused_after < 3, f"took {refused_after:.1f}s to refuse"
    assert max(latencies) < 0.5, latencies


# -- what an error repeats ---------------------------------------------------------------------


def test_a_large_invalid_body_gets_a_small_error(seeded: tuple[Team, int]) -> None:
    """3,000 invalid records of 2 KB: the error lists a few problems and repeats none of
    the input (it used to repeat every record, and more)."""
    team, _ = seeded
    bad = [execution(i, "print('hello')" * 150, msg_id=f"bad-{i}", status="bogus")
           for i in range(1, 3001)]  # fmt: skip
    body = json.dumps({"records": bad}).encode()
    assert len(body) > 5 * MiB
    r = team.as_("alice").request("POST", f"{API}/ingest", data=body)
    assert r.status_code == 400, r.text[:500]
    assert len(r.content) < 16 * 1024, f"a {len(r.content)}-byte error"
    errors = r.json()["detail"]
    assert len(errors) <= 21 and errors[-1]["type"] == "too_many_errors"
    assert all("input" not in e for e in errors)
    assert ["records", 0, "execution", "status"] in [e["loc"] for e in errors]


def test_an_error_never_repeats_a_huge_value(seeded: tuple[Team, int]) -> None:
    team, _ = seeded
    r = team.as_("alice").request("POST", f"{API}/logs", json={"msg_id": "m" * 900_000})
    assert r.status_code == 400 and len(r.content) < 4096, len(r.content)
    assert "at most 128 characters" in r.json()["detail"][0]["msg"]


# -- nesting ------------------------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("POST", "models/iris/versions",
         '{"artifact": "%s", "flavor": "bytes", "params": {"p": %%s}}' % ("0" * 64)),
        ("POST", "logs", '{"msg_id": "m", "params": {"p": %s}}'),
        ("POST", "ingest", '{"records": %s}'),
        ("PUT", "models/iris/aliases/deep", '{"version": %s}'),
    ],
)  # fmt: skip
def test_json_nested_past_the_parser(
    seeded: tuple[Team, int], method: str, path: str, template: str, depth: int
) -> None:
    team, _ = seeded
    body = (template % nested(depth)).encode()
    r = team.as_("alice").request(method, f"{API}/{path}", data=body)
    assert r.status_code == 400, r.text[:500]
    assert "not valid JSON" in r.json()["error"] and "recursion" in r.json()["error"]


# -- cursors ----------------------------------------------------------------------------------


def cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


BAD_VALUES: list[Any] = ["x", "not-a-date", "0001-01-01T00:00:00+05:00", 10**30, 2**63, 2**31,
                         -1, 1.5, [1], {"a": 1}, True, None]  # fmt: skip
GOOD = {"t": "2026-01-01T12:00:00+00:00", "i": 1}


def crafted_cursors(shape: str) -> list[str]:
    """Every position of the key replaced by every bad value; wrong lengths; junk."""
    keys = []
    for position in range(len(shape)):
        for bad in BAD_VALUES:
            key: list[Any] = [GOOD[kind] for kind in shape]
            key[position] = bad
            keys.append(key)
    keys += [[], [GOOD[k] for k in shape] + [1], {"k": 1}, "x"]
    deep = base64.urlsafe_b64encode(nested(1000).encode()).decode()
    return [cursor(k) for k in keys] + [deep, "!!!", "A" * 5000]


@pytest.mark.parametrize("listing", PAGED)
def test_crafted_cursors_on_every_paged_list(seeded: tuple[Team, int], listing: str) -> None:
    team, run_id = seeded
    api = team.as_("vera")
    path = f"{API}/{listing.format(run=run_id)}"
    params = {"notebook": NOTEBOOK} if listing in ("executions", "versions") else {}
    first = api.get(path, limit=1, **params)
    assert first["next"], f"{listing}: seed two items so there is a real cursor"
    assert api.get(path, limit=1, cursor=first["next"], **params)["items"]  # real ones work
    wrong = {}
    for crafted in crafted_cursors(KEYS[listing]):
        r = api.request("GET", path, params={**params, "cursor": crafted})
        if r.status_code != 400 or "cursor" not in r.json()["error"]:
            wrong[crafted[:60]] = (r.status_code, r.text[:120])
    assert not wrong, wrong


# -- integers and times past the store ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["runs/99999999999999999999", "runs/2147483648", "runs/2147483648/executions",
     "executions/9223372036854775808", "executions/2147483648/logs", "versions/2147483648",
     "versions/1/diff/99999999999999999999", "runs/" + "9" * 5000],
    ids=lambda path: path[:40],
)  # fmt: skip
def test_ids_past_the_store_in_paths(seeded: tuple[Team, int], path: str) -> None:
    team, _ = seeded
    r = team.as_("vera").request("GET", f"{API}/{path}")
    assert r.status_code == 400, r.text
    assert "out of range" in r.json()["error"]


@pytest.mark.parametrize("version", [2**31, 10**20])
def test_alias_pointing_past_the_store(seeded: tuple[Team, int], version: int) -> None:
    team, _ = seeded
    alice = team.as_("alice")
    r = alice.request("PUT", f"{API}/models/iris/aliases/far", json={"version": version})
    assert r.status_code == 400, r.text
    assert "far" not in alice.get(f"{API}/models/iris")["aliases"]


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 2**31},
        {"seq": 10**20},
        {"execution_count": 2**40},
        {"started_at": "0001-01-01T00:00:00+05:00"},  # year 0 once in UTC
        {"finished_at": "9999-12-31T23:00:00-05:00"},  # year 10000 once in UTC
    ],
    ids=["seq-int4", "seq-huge", "execution-count", "year-0", "year-10000"],
)
def test_numbers_and_times_past_the_store_in_records(
    seeded: tuple[Team, int], change: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    team, _ = seeded
    alice = team.as_("alice")
    key = f"bounds-{request.node.callspec.id}"
    crafted = {**execution(1, "x = 1", run_key=key, notebook="bounds.ipynb", msg_id=key), **change}
    records = [run(key, "bounds.ipynb"), crafted]
    r = alice.request("POST", f"{API}/ingest", json={"records": records})
    assert r.status_code == 400, r.text
    assert alice.get(f"{API}/executions", notebook="bounds.ipynb")["items"] == []


def test_a_naive_start_with_an_aware_finish(seeded: tuple[Team, int]) -> None:
    """A time without a zone is UTC (as stored), so the duration can be computed (it was a
    TypeError, a 500, when one time had a zone and the other not)."""
    team, _ = seeded
    alice = team.as_("alice")
    times = {"started_at": "2026-01-01T12:00:00", "finished_at": "2026-01-01T12:00:01+00:00"}
    record = {**execution(1, "x = 1", run_key="naive", notebook="naive.ipynb"), **times}
    ingest(alice, [run("naive", "naive.ipynb"), record])
    stored = alice.get(f"{API}/executions", notebook="naive.ipynb")["items"]
    assert [e["duration_ms"] for e in stored] == [1000.0]


# -- a lineage cell nested past the parser --------------------------------------------------------


def test_a_lineage_cell_nested_past_the_parser(seeded: tuple[Team, int]) -> None:
    """Cells Python cannot parse (RecursionError, MemoryError) are kept whole in the lineage
    notebook, as any cell the slice cannot read is, instead of failing it."""
    team, _ = seeded
    alice = team.as_("alice")
    cells = ["import cellops", "deep = " + "-" * 100_000 + "1", "wide = 1" + " + 1" * 200_000,
             "model = deep + wide", "cellops.register(model, 'deep')"]  # fmt: skip
    records: list[dict[str, Any]] = [run("lineage-run", "lineage.ipynb")]
    records += [
        execution(i, code, f"cell-{i}", "lineage-run", "lineage.ipynb", msg_id=f"lineage-{i}")
        for i, code in enumerate(cells, 1)
    ]
    ingest(alice, records)
    body = {
        "artifact": ARTIFACT_SHA,
        "flavor": "bytes",
        "lineage": {"msg_id": f"lineage-{len(cells)}"},
    }
    assert alice.request("POST", f"{API}/models/deep/versions", json=body).status_code == 201
    for minimal in ("false", "true"):
        r = alice.request(
            "GET", f"{API}/models/deep/versions/1/notebook", params={"minimal": minimal}
        )
        assert r.status_code == 200, r.text[:500]
        sources = [c["source"] for c in r.json()["cells"]]
        assert cells[1] in sources and cells[2] in sources  # unreadable: kept as written


# -- 405 and the OpenAPI document ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "runs", {"GET"}), ("POST", "models/iris", {"GET", "PATCH", "DELETE"}),
     ("PUT", "status", {"GET"}), ("GET", "ingest", {"POST"}),
     ("POST", "models/iris/versions/1", {"GET", "PATCH", "DELETE"})],
)  # fmt: skip
def test_a_method_not_allowed_names_the_allowed_ones(
    seeded: tuple[Team, int], method: str, path: str, allowed: set[str]
) -> None:
    team, _ = seeded
    r = team.as_("alice").request(method, f"{API}/{path}")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers.get("Allow", "").split(",")} == allowed
    assert r.json()["error"].startswith(f"{method} is not allowed here")


def test_a_jupyter_server_names_the_allowed_methods_too(jupyter: JupyterServer) -> None:
    r = jupyter.api.request("DELETE", f"{API}/runs")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers.get("Allow", "").split(",")} == {"GET", "OPTIONS"}


def ecma_matches(pattern: str, text: str) -> bool:
    """JSON Schema patterns are ECMA-262: ``$`` is the end of the input (Python's ``\\Z``)."""
    return re.search(pattern.replace("$", r"\Z"), text) is not None


def test_the_openapi_document_states_names_aliases_and_cursors(seeded: tuple[Team, int]) -> None:
    team, _ = seeded
    doc = team.as_("vera").get(f"{API}/openapi.json")
    op = doc["paths"]["/models/{name}/aliases/{alias}"]["put"]
    schemas = {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "path"}
    assert ecma_matches(schemas["name"]["pattern"], "iris")
    assert not ecma_matches(schemas["name"]["pattern"], "iris\n")
    assert ecma_matches(schemas["alias"]["pattern"], "champion")
    assert not ecma_matches(schemas["alias"]["pattern"], "9lives")
    run_param = doc["paths"]["/runs/{run_id}"]["get"]["parameters"][0]["schema"]
    assert run_param["type"] == "integer" and run_param["maximum"] == 2**31 - 1
    cursor_schema = next(
        p["schema"] for p in doc["paths"]["/runs"]["get"]["parameters"] if p["name"] == "cursor"
    )
    real = team.as_("vera").get(f"{API}/models", limit=1)["next"]
    assert ecma_matches(cursor_schema["pattern"], real)
    assert not ecma_matches(cursor_schema["pattern"], "not a cursor!")
