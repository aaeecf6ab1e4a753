"""Attacks on comments: bodies are HTML that a teammate's browser renders, so every trick
to get markup, scripts or script URLs into the rendered ``html`` must come out inert; and
bodies, ids, targets and threads that are out of bounds or not the caller's are refused
with a 4xx that says what to fix, storing nothing."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
import requests

from ..records import execution, run
from .conftest import API, Team
from .seed import ingest, register

ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "img", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
SAFE_LINK = ("http://", "https://", "mailto:", "/", "#")


class Inspector(HTMLParser):
    """Every tag and attribute of a fragment, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def assert_inert(html: str) -> None:
    parser = Inspector()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, f"<{tag}> in {html!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"{name}= in {html!r}"
            assert name in {"href", "src", "alt", "title", "rel", "class", "start", "style"}
            if name == "href":
                assert value.lower().startswith(SAFE_LINK) or ":" not in value, html
                assert attrs.get("rel") == "noopener noreferrer nofollow", html
            if name == "src":
                ok = value.lower().startswith(("http://", "https://")) or value.startswith(
                    ("data:image/png;", "data:image/jpeg;", "data:image/gif;")
                )
                assert ok, html
            if name == "class":
                assert value == "cellops-mention", html
            if name == "style":
                assert value.startswith("text-align:") and ";" not in value.rstrip(";"), html


PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](<java\tscript:alert(1)>)",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;avascript&#58;alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](javascript:alert(1))",
    '![x](https://ok.example/x.png" onerror="alert(1))',
    '[x](https://ok.example "t\\" onmouseover=\\"alert(1)")',
    "<javascript:alert(1)>",
    "[x][1]\n\n[1]: javascript:alert(1)",
    '<div style="position:fixed;inset:0">cover</div>',
    "&lt;script&gt;alert(1)&lt;/script&gt; &#60;img src=x onerror=alert(1)&#62;",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "@<script>alert(1)</script> @bob<img src=x onerror=alert(1)>",
    "| a <script> | b |\n|:-|-:|\n| <img src=x onerror=alert(1)> | 2 |",
    "<!-- <script>alert(1)</script> -->",
]


def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def notebook(team: Team) -> str:
    """alice's notebook, cell c1 run, plus bob's notebook (another target)."""
    path = f"attack-{tag()}/nb.ipynb"
    key = f"r-{tag()}"
    ingest(
        team.as_("alice"), [run(key, path, user="alice"), execution(1, "x = 1", "c1", key, path)]
    )
    return path


def cell(path: str, cell_id: str = "c1") -> dict[str, Any]:
    return {"kind": "cell", "notebook": path, "cell_id": cell_id}


def post(team: Team, who: str, payload: Any, notebook: str | None = None) -> requests.Response:
    params = {"notebook": notebook} if notebook else {}
    return team.as_(who).request("POST", f"{API}/comments", params=params, json=payload)


def stored(team: Team, path: str) -> list[dict[str, Any]]:
    return team.as_("vera").get(f"{API}/comments", notebook=path)["items"]


@pytest.mark.parametrize("body", PAYLOADS, ids=range(len(PAYLOADS)))
def test_markup_and_script_urls_come_out_inert(team: Team, notebook: str, body: str) -> None:
    r = post(team, "alice", {"target": cell(notebook), "body": body}, notebook)
    assert r.status_code == 201, r.text
    comment = r.json()
    assert comment["body"] == body  # kept as written; only `html` is for rendering
    assert_inert(comment["html"])
    # What is left of a payload is text: a browser shows it, never runs it.
    assert "<script" not in comment["html"].lower()
    listed = next(c for c in stored(team, notebook) if c["id"] == comment["id"])
    assert listed["html"] == comment["html"]


def test_safe_markdown_still_renders(team: Team, notebook: str) -> None:
    body = (
        "**bold** [docs](https://example.com/a?b=1) [rel](/lab/tree/x) [mail](mailto:a@b.c) "
        "![chart](data:image/png;base64,iVBORw0KGgo=) @bob"
    )
    html = post(team, "alice", {"target": cell(notebook), "body": body}, notebook).json()["html"]
    assert_inert(html)
    for part in (
        "<strong>bold</strong>",
        'href="https://example.com/a?b=1"',
        'href="/lab/tree/x"',
        'href="mailto:a@b.c"',
        'src="data:image/png;base64,iVBORw0KGgo="',
        '<span class="cellops-mention">@bob</span>',
    ):
        assert part in html, html


@pytest.mark.parametrize(
    ("payload", "status", "says"),
    [
        ({"body": "x" * 10_001}, 400, "body"),
        ({"body": "   \n\t  "}, 400, "empty or only whitespace"),
        ({"body": ""}, 400, "body"),
        ({"body": "ok", "parent_id": 0}, 400, "parent_id"),
        ({"body": "ok", "parent_id": 2**31}, 400, "parent_id"),
        ({"body": "ok", "extra": 1}, 400, "extra"),
        (
            {"body": "ok", "target": {"kind": "cell", "notebook": "n", "cell_id": "c" * 129}},
            400,
            "cell_id",
        ),
        ({"body": "ok", "target": {"kind": "execution", "id": 2**31}}, 400, "id"),
        ({"body": "ok", "target": {"kind": "run", "id": -1}}, 400, "id"),
        ({"body": "ok", "target": {"kind": "deployment", "id": 1}}, 400, "kind"),
        (
            {"body": "ok", "target": {"kind": "model_version", "model": "../x", "version": 1}},
            400,
            "model",
        ),
        ({"body": 5}, 400, "body"),
    ],
    ids=repr,
)
def test_bad_comments_are_refused_and_store_nothing(
    team: Team, notebook: str, payload: dict[str, Any], status: int, says: str
) -> None:
    before = stored(team, notebook)
    r = post(team, "alice", {"target": cell(notebook), **payload}, notebook)
    assert r.status_code == status, r.text
    assert says in r.text and set(r.json()) == {"error", "detail"}
    assert stored(team, notebook) == before


def test_a_huge_request_is_refused_before_it_is_read(team: Team, notebook: str) -> None:
    r = post(team, "alice", {"target": cell(notebook), "body": "x" * 200_000}, notebook)
    assert r.status_code == 413 and "too large" in r.json()["error"]


def test_nul_and_unicode_bodies_are_kept_exactly(team: Team, notebook: str) -> None:
    body = "nul \u0000 here, emoji 🎉, rtl \u202e txt"
    c = post(team, "alice", {"target": cell(notebook), "body": body}, notebook).json()
    assert next(x for x in stored(team, notebook) if x["id"] == c["id"])["body"] == body


def test_a_query_notebook_other_than_the_targets_is_refused(team: Team, notebook: str) -> None:
    r = post(team, "alice", {"target": cell(notebook), "body": "x"}, "elsewhere.ipynb")
    assert r.status_code == 400 and "another notebook" in r.json()["error"]


def test_nobody_edits_or_deletes_anothers_comment(team: Team, notebook: str) -> None:
    c = post(team, "alice", {"target": cell(notebook), "body": "alice's words"}, notebook).json()
    for who in ("bob", "cora", "ada"):
        api = team.as_(who)
        r = api.request("PATCH", f"{API}/comments/{c['id']}", json={"body": "forged"})
        assert r.status_code == 403, r.text
        r = api.request("DELETE", f"{API}/comments/{c['id']}")
        assert r.status_code == 403, r.text
    kept = next(x for x in stored(team, notebook) if x["id"] == c["id"])
    assert (kept["body"], kept["edited_at"], kept["deleted"]) == ("alice's words", None, False)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PATCH", "comments/99999999999", 400),
        ("PATCH", "comments/abc", 400),
        ("PATCH", "comments/-1", 400),
        ("PATCH", "comments/2147483647", 404),
        ("DELETE", "comments/2147483647", 404),
        ("DELETE", "comments/1%2F..", 400),
        ("GET", "comments?execution=2147483648", 400),
        ("GET", "comments?run=0", 400),
        ("GET", "comments?model=m&version=99999999999", 400),
        ("GET", "comments?execution=1&after=-5", 400),
        ("GET", "comments?execution=1&limit=0", 400),
        ("GET", "comments/counts", 400),
    ],
)
def test_ids_out_of_range_are_4xx_that_say_so(
    team: Team, method: str, path: str, status: int
) -> None:
    body = {"resolved": True} if method == "PATCH" else None
    r = team.as_("admin").request(method, f"{API}/{path}", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_a_reply_cannot_move_a_thread_to_another_target(team: Team, notebook: str) -> None:
    model = f"attack-{tag()}"
    assert register(team.as_("alice"), model).status_code == 201
    on_model = post(
        team,
        "alice",
        {"target": {"kind": "model_version", "model": model, "version": 1}, "body": "v1?"},
    ).json()
    on_cell = post(team, "alice", {"target": cell(notebook), "body": "c1?"}, notebook).json()
    for target, parent in (
        (cell(notebook), on_model["id"]),  # a cell reply to a model thread
        (cell(notebook, "c2"), on_cell["id"]),  # another cell of the same notebook
        ({"kind": "model_version", "model": model, "version": 1}, on_cell["id"]),
    ):
        before = stored(team, notebook)
        r = post(team, "bob", {"target": target, "body": "moved", "parent_id": parent}, notebook)
        assert r.status_code == 400 and "another target" in r.json()["error"], r.text
        assert stored(team, notebook) == before
    r = post(team, "bob", {"target": cell(notebook), "body": "x", "parent_id": 2**31 - 1}, notebook)
    assert r.status_code == 404 and "to reply to" in r.json()["error"]


def test_deep_reply_chains_stay_one_level(team: Team, notebook: str) -> None:
    parent = post(team, "alice", {"target": cell(notebook), "body": "root"}, notebook).json()
    root = parent["id"]
    for i in range(30):
        who = ("bob", "alice", "cora")[i % 3]
        payload = {"target": cell(notebook), "body": f"r{i}", "parent_id": parent["id"]}
        parent = post(team, who, payload, notebook).json()
        assert parent["parent_id"] == root


def test_mentions_are_bounded_and_looking_them_up_is_cheap(team: Team, notebook: str) -> None:
    names = [f"m{tag()}" for _ in range(21)]
    for name in names:
        team.add_user(name, "viewer")
    body = " ".join(f"@{n}" for n in names)
    r = post(team, "alice", {"target": cell(notebook), "body": body}, notebook)
    assert r.status_code == 400 and "at most 20" in r.json()["error"]
    ok = post(
        team,
        "alice",
        {"target": cell(notebook), "body": " ".join(f"@{n}" for n in names[:20])},
        notebook,
    )
    assert ok.status_code == 201 and ok.json()["mentions"] == names[:20]
    # A body of 1,400 distinct @words that are nobody: accepted, nobody mentioned.
    crowd = " ".join(f"@x{i}" for i in range(1400))
    r = post(team, "alice", {"target": cell(notebook), "body": crowd}, notebook)
    assert r.status_code == 201 and r.json()["mentions"] == []


def test_a_viewer_cannot_write_through_any_comment_route(team: Team, notebook: str) -> None:
    c = post(team, "alice", {"target": cell(notebook), "body": "x"}, notebook).json()
    vera = team.as_("vera")
    assert post(team, "vera", {"target": cell(notebook), "body": "x"}, notebook).status_code == 403
    assert (
        vera.request("PATCH", f"{API}/comments/{c['id']}", json={"resolved": True}).status_code
        == 403
    )
    assert vera.request("DELETE", f"{API}/comments/{c['id']}").status_code == 403
