"""Team review from the notebook: comments, review requests and verdicts.

    cellops.comment("Why drop these rows?")                  # on the cell running this
    cellops.comment("Looks good", model="churn", version=3)  # on a model version
    cellops.comment("Agreed", reply_to=17)                   # a reply in comment 17's thread
    cellops.request_review("churn", 3, ["bob"])
    cellops.review("churn", 3, "approve", body="Checked the holdout set")

The server renders each comment's Markdown to sanitized HTML (``Comment.html``); this
module shows only that, passed once more through a strict allow-list of its own, and
escapes everything else it puts in HTML. Standard library only.
"""

from __future__ import annotations

import hashlib
import html
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

from . import context
from .client import CellopsError, RegistryError, client, segment
from .registry import check_name

ROLES = ("viewer", "commenter", "editor", "approver", "admin")  # each may do what those before may
VERDICTS = ("approve", "request_changes")
MAX_BODY = 10_000  # the server's limit of one comment's Markdown

e = html.escape


class NoTarget(CellopsError, ValueError):
    """cellops could not tell what a comment is about."""


# -- what the server answers ---------------------------------------------------------------


@dataclass
class Comment:
    """One comment (``POST /comments``, ``GET /comments``)."""

    id: int
    target: dict[str, Any]
    author: str
    body: str = ""
    html: str = ""  # the server's sanitized rendering of ``body``
    created_at: str | None = None
    edited_at: str | None = None
    parent_id: int | None = None
    resolved: bool = False
    resolved_by: str | None = None
    outdated: bool = False
    deleted: bool = False
    mentions: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Comment:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in known})

    def _repr_html_(self) -> str:
        return thread_html([self], str(self.target.get("kind", "")))


@dataclass
class Reviews:
    """A model version's review (``GET /models/{name}/versions/{v}/reviews``)."""

    state: str
    approvals: list[str] = field(default_factory=list)
    changes_requested: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Reviews:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in known})

    def _repr_html_(self) -> str:
        return state_html(self)


# -- targets -------------------------------------------------------------------------------


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int; got {value!r}")
    return value


def this_notebook() -> str:
    """The path of the notebook this kernel runs, as the Jupyter server knows it now (a
    rename shows), from its sessions."""
    import json

    from .client import kernel_name

    kernel = kernel_name()
    try:
        sessions = json.loads(client().request("GET", "api/sessions", prefix="")[1])
    except RegistryError as exc:
        raise NoTarget(
            "cellops cannot tell which notebook this kernel runs (the server it talks to is "
            f"not a Jupyter server: {exc}); pass notebook= and cell= (or model=/version=, "
            "run= or execution=)"
        ) from None
    paths = {
        str(s.get("path") or (s.get("notebook") or {}).get("path"))
        for s in sessions
        if isinstance(s, dict)
        and (s.get("kernel") or {}).get("id") == kernel
        and s.get("type", "notebook") == "notebook"
    }
    if len(paths) != 1:
        raise NoTarget(
            "cellops cannot tell which notebook this kernel runs "
            f"({'no notebook session' if not paths else 'several notebooks share it'}); "
            "pass notebook= and cell="
        )
    return paths.pop()


def target_for(
    *,
    model: str | None = None,
    version: int | None = None,
    run: int | None = None,
    execution: int | None = None,
    notebook: str | None = None,
    cell: str | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """The comment target the arguments name; none named: the cell running this code."""
    named = [
        kind
        for kind, given in (
            ("model", model is not None or version is not None),
            ("run", run is not None),
            ("execution", execution is not None),
            ("cell", notebook is not None or cell is not None),
        )
        if given
    ]
    if len(named) > 1:
        raise NoTarget(f"a comment has one target; got {' and '.join(named)}")
    if model is not None or version is not None:
        if model is None or version is None:
            raise NoTarget("a model version comment needs both model= and version=")
        return {
            "kind": "model_version",
            "model": check_name(model),
            "version": _positive(version, "version"),
        }
    if run is not None:
        return {"kind": "run", "id": _positive(run, "run")}
    if execution is not None:
        return {"kind": "execution", "id": _positive(execution, "execution")}
    return _cell_target(notebook, cell, owner)


def _cell_target(notebook: str | None, cell: str | None, owner: str | None) -> dict[str, Any]:
    code_sha = None
    if cell is None:
        cell = context.current().cell_id
        # The running cell's code: the comment is about it, although its execution is
        # recorded only after it finishes (else the previous code would be the anchor).
        code = context.current_code()
        if code is not None:
            code_sha = hashlib.sha256(code.encode("utf-8")).hexdigest()
        if cell is None:
            raise NoTarget(
                "this code is not running in a notebook cell with an id (a console, a script, "
                "a widget's button, or an old notebook format); pass notebook= and cell=, "
                "or model=/version=, run= or execution="
            )
    if notebook is None:
        notebook = this_notebook()
    for value, what in ((notebook, "notebook"), (cell, "cell")):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{what} must be non-empty text; got {value!r}")
    target: dict[str, Any] = {"kind": "cell", "notebook": notebook, "cell_id": cell}
    if owner is not None:
        target["owner"] = owner
    if code_sha is not None:
        target["code_sha"] = code_sha
    return target


def _query(target: Mapping[str, Any]) -> dict[str, Any]:
    """GET /comments's filter for ``target``."""
    kind = target["kind"]
    if kind == "cell":
        query = {"notebook": target["notebook"], "cell": target["cell_id"]}
        return {**query, **({"owner": target["owner"]} if target.get("owner") else {})}
    if kind == "model_version":
        return {"model": target["model"], "version": target["version"]}
    return {kind: target["id"]}


# -- comments ------------------------------------------------------------------------------


def _check_body(body: Any) -> str:
    if not isinstance(body, str) or not body.strip():
        raise ValueError("a comment needs some text (Markdown)")
    if len(body) > MAX_BODY:
        raise ValueError(f"a comment is at most {MAX_BODY:,} characters; this one is {len(body):,}")
    return body


def comment(
    body: str,
    *,
    model: str | None = None,
    version: int | None = None,
    run: int | None = None,
    execution: int | None = None,
    notebook: str | None = None,
    cell: str | None = None,
    owner: str | None = None,
    reply_to: int | None = None,
) -> Comment:
    """Comment (Markdown; ``@name`` mentions a team member) on the running cell, or on what
    the arguments name: ``model=`` and ``version=``, ``run=``, ``execution=`` (ids as the
    sidebar shows them), or ``notebook=`` and ``cell=``. ``reply_to=`` a comment's id
    answers in its thread (its target is taken from that comment)."""
    _check_body(body)
    explicit = any(v is not None for v in (model, version, run, execution, notebook, cell))
    if reply_to is not None:
        _positive(reply_to, "reply_to")
    guessed = False
    if reply_to is not None and not explicit:
        target, guessed = _parent_target(reply_to)
    else:
        target = target_for(
            model=model,
            version=version,
            run=run,
            execution=execution,
            notebook=notebook,
            cell=cell,
            owner=owner,
        )
    payload: dict[str, Any] = {"target": target, "body": body}
    if reply_to is not None:
        payload["parent_id"] = reply_to
    # ?notebook= lets a team member's Jupyter server add which copy of the notebook it is.
    path = "comments"
    if target["kind"] == "cell" and not target.get("owner"):
        path += "?" + urlencode({"notebook": target["notebook"]})
    try:
        running_cell = not explicit and reply_to is None
        return Comment.from_json(_post_comment(path, payload, running_cell))
    except RegistryError as exc:
        if not guessed or exc.status != 400:
            raise
        raise RegistryError(
            f"{exc} — comment {reply_to} is not on the cell running this code: name its "
            "target too (model= and version=, run=, execution=, or notebook= and cell=)",
            exc.status,
            exc.detail,
        ) from None


def _parent_target(comment_id: int) -> tuple[dict[str, Any], bool]:
    """The target of comment ``comment_id`` (a reply shares its thread's target), and
    whether it is only a guess: the running cell."""
    try:
        return dict(client().get_json(f"comments/{comment_id}")["target"]), False
    except RegistryError as exc:
        if exc.status == 404 and "no comment" in str(exc):
            raise RegistryError(f"there is no comment {comment_id} to reply to", 404) from None
        if exc.status not in (404, 405, 501):
            raise
    # A server that cannot show one comment: the reply goes where the code runs.
    try:
        return target_for(), True
    except NoTarget as exc:
        raise NoTarget(f"{exc} — to reply to comment {comment_id}, also name its target") from None


NOTEBOOK_ON_ITS_WAY = 5.0  # seconds a comment on the first cell run waits for its notebook


def _post_comment(path: str, payload: dict[str, Any], running_cell: bool) -> Any:
    """POST the comment. The running cell of a notebook's first run may not be stored yet
    (its record reaches the store a moment after the cell starts): a 404 then is retried
    for a few seconds rather than telling the user to run a cell they are running."""
    deadline = time.monotonic() + (NOTEBOOK_ON_ITS_WAY if running_cell else 0.0)
    while True:
        try:
            return client().send_json("POST", path, payload)
        except RegistryError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def comments(
    *,
    model: str | None = None,
    version: int | None = None,
    run: int | None = None,
    execution: int | None = None,
    notebook: str | None = None,
    cell: str | None = None,
    owner: str | None = None,
) -> list[Comment]:
    """The comments on a target (the same arguments as ``comment``; none: the running
    cell), oldest first, replies included (``parent_id``)."""
    target = target_for(
        model=model,
        version=version,
        run=run,
        execution=execution,
        notebook=notebook,
        cell=cell,
        owner=owner,
    )
    page = client().get_json("comments?" + urlencode(_query(target)))
    return [Comment.from_json(item) for item in page["items"]]


def resolve(comment_id: int, resolved: bool = True) -> Comment:
    """Resolve (or, with ``resolved=False``, reopen) the thread of comment ``comment_id``."""
    _positive(comment_id, "comment_id")
    body = {"resolved": bool(resolved)}
    return Comment.from_json(client().send_json("PATCH", f"comments/{comment_id}", body))


# -- reviews -------------------------------------------------------------------------------


def _version_path(name: str, version: int) -> str:
    check_name(name)
    return f"models/{segment(name)}/versions/{_positive(version, 'version')}"


def request_review(name: str, version: int, reviewers: str | Iterable[str]) -> Reviews:
    """Ask team members (names, as ``cellops`` users know them) to review a model version;
    each gets it in their inbox. Needs the editor role."""
    names = [reviewers] if isinstance(reviewers, str) else list(reviewers)
    names = [n.strip() for n in names if isinstance(n, str) and n.strip()]
    if not names:
        raise ValueError("name at least one reviewer, e.g. request_review('churn', 3, ['bob'])")
    body = {"reviewers": list(dict.fromkeys(names))}
    path = _version_path(name, version) + "/review-requests"
    return Reviews.from_json(client().send_json("POST", path, body))


def review(name: str, version: int, verdict: str, body: str | None = None) -> Reviews:
    """Approve (``"approve"``) or request changes (``"request_changes"``) on a model
    version, with an optional comment (Markdown). Needs the approver role; nobody reviews
    their own version."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be 'approve' or 'request_changes'; got {verdict!r}")
    payload: dict[str, Any] = {"verdict": verdict}
    if body is not None:
        payload["body"] = _check_body(body)
    path = _version_path(name, version) + "/reviews"
    return Reviews.from_json(client().send_json("POST", path, payload))


def reviews(name: str, version: int) -> Reviews:
    """A model version's review state, approvals, open requests and every verdict."""
    return Reviews.from_json(client().get_json(_version_path(name, version) + "/reviews"))


def promotion(name: str, version: int) -> list[dict[str, Any]]:
    """For each alias the model's policy protects: may this version take it now, and if
    not, what is missing (``{"alias", "allowed", "failed": [{"rule", "message", ...}]}``)."""
    return list(client().get_json(_version_path(name, version) + "/promotion")["items"])


def me() -> dict[str, str]:
    """Who the server takes you for: ``{"name", "role"}``."""
    return dict(client().get_json("me"))


def role_at_least(role: str | None, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


# -- HTML ----------------------------------------------------------------------------------

_TAGS = {
    "p", "br", "hr", "em", "strong", "b", "i", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a", "img", "table", "thead",
    "tbody", "tr", "th", "td", "span", "sup", "sub",
}  # fmt: skip
_VOID = {"br", "hr", "img"}
_DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "svg", "math"}
_TEXT_ATTRS = {("a", "title"), ("img", "alt"), ("img", "title")}
_IMAGE_DATA = ("data:image/png;", "data:image/jpeg;", "data:image/gif;")


def _safe_url(url: str, image: bool) -> bool:
    # Browsers ignore control characters and spaces inside a scheme ("java\tscript:").
    squashed = "".join(ch for ch in url if ch > " ").lower()
    head = squashed.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if ":" not in head:
        return not image  # a relative link
    if squashed.startswith(("http:", "https:")):
        return True
    return squashed.startswith(_IMAGE_DATA) if image else squashed.startswith("mailto:")


class _Cleaner(HTMLParser):
    """Rebuilds a fragment from allowed tags and attributes only, re-escaping all text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP_WITH_CONTENT:
            self.dropping += 1
            return
        if self.dropping or tag not in _TAGS:
            return
        kept = ""
        for name, value in attrs:
            if value is None:
                continue
            url = (tag, name) in (("a", "href"), ("img", "src"))
            if (url and _safe_url(value, tag == "img")) or (tag, name) in _TEXT_ATTRS:
                kept += f' {name}="{e(value)}"'
        if tag == "a":
            kept += ' rel="noopener noreferrer nofollow" target="_blank"'
        self.out.append(f"<{tag}{kept}>")
        if tag not in _VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_WITH_CONTENT:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping or tag not in self.open:
            return
        while self.open:
            last = self.open.pop()
            self.out.append(f"</{last}>")
            if last == tag:
                return

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(e(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{t}>" for t in reversed(self.open))


def safe_html(fragment: str) -> str:
    """``fragment`` (the server's sanitized rendering) kept to a strict allow-list again:
    what a notebook shows must not depend on one sanitizer alone."""
    cleaner = _Cleaner()
    cleaner.feed(fragment or "")
    return cleaner.result()


def _when(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ")


def _comment_html(c: Comment, replies: list[Comment]) -> str:
    classes = ["cellops-comment"]
    if c.deleted:
        classes.append("cellops-comment-deleted")
    if c.resolved and c.parent_id is None:
        classes.append("cellops-comment-resolved")
    badges = ""
    if c.outdated:
        badges += ' <span class="cellops-comment-outdated">outdated</span>'
    if c.resolved and c.parent_id is None:
        by = f" by {e(c.resolved_by)}" if c.resolved_by else ""
        badges += f' <span class="cellops-card-muted">resolved{by}</span>'
    if c.deleted:
        body = '<span class="cellops-card-muted">deleted</span>'
    elif c.html:
        body = safe_html(c.html)
    else:  # a server without rendering: the Markdown as plain text, never as HTML
        body = f'<div style="white-space: pre-wrap">{e(c.body)}</div>'
    edited = " (edited)" if c.edited_at else ""
    inner = "".join(_comment_html(r, []) for r in replies)
    nested = f'<div class="cellops-comment-replies">{inner}</div>' if inner else ""
    return (
        f'<div class="{" ".join(classes)}" data-comment-id="{int(c.id)}">'
        f'<div class="cellops-comment-meta"><span class="cellops-comment-author">'
        f'{e(c.author or "")}</span> <span class="cellops-card-muted">#{int(c.id)} · '
        f"{e(_when(c.created_at))}{edited}</span>{badges}</div>"
        f'<div class="cellops-comment-body">{body}</div>{nested}</div>'
    )


def thread_html(items: list[Comment], kind: str) -> str:
    """Threads (root comments with their replies beneath), oldest first."""
    by_id = {c.id: c for c in items}

    def root_of(c: Comment) -> Comment:
        seen = {c.id}  # a reply's reply sits in its root's thread too; ids never loop back
        while c.parent_id in by_id and c.parent_id not in seen:
            c = by_id[c.parent_id]
            seen.add(c.id)
        return c

    roots: list[Comment] = []
    replies: dict[int, list[Comment]] = {}
    for c in items:
        root = root_of(c)
        if root is c:
            roots.append(c)
        else:
            replies.setdefault(root.id, []).append(c)
    body = "".join(_comment_html(c, replies.get(c.id, [])) for c in roots)
    if not roots:
        body = '<div class="cellops-card-muted">No comments yet.</div>'
    return f'<div class="cellops-thread" data-target-kind="{e(kind)}">{body}</div>'


STATE_LABELS = {
    "none": "not reviewed",
    "requested": "review requested",
    "approved": "approved",
    "changes_requested": "changes requested",
}


def state_html(r: Reviews) -> str:
    label = STATE_LABELS.get(r.state, r.state)
    parts = [f'<span class="cellops-review-state" data-state="{e(r.state)}">{e(label)}</span>']
    for names, what in (
        (r.approvals, "approved by"),
        (r.changes_requested, "changes requested by"),
        (r.requested, "waiting for"),
    ):
        if names:
            parts.append(f'<span class="cellops-card-muted">{what} {e(", ".join(names))}</span>')
    return " · ".join(parts)


def missing_text(check: Mapping[str, Any]) -> str:
    """``production: needs 1 more approval; accuracy 0.88 < 0.9`` or ``production: ready``."""
    failed = [str(f.get("message") or f.get("rule")) for f in check.get("failed") or []]
    return f"{check.get('alias')}: {'; '.join(failed) if failed else 'ready'}"


def aliases_html(checks: list[Mapping[str, Any]]) -> str:
    rows = "".join(
        f'<div class="cellops-alias-missing" data-alias="{e(str(c.get("alias")))}" '
        f'data-allowed="{"true" if c.get("allowed") else "false"}">{e(missing_text(c))}</div>'
        for c in checks
    )
    return f'<div class="cellops-review-aliases">{rows}</div>' if rows else ""


__all__ = [
    "Comment",
    "NoTarget",
    "Reviews",
    "comment",
    "comments",
    "me",
    "promotion",
    "request_review",
    "resolve",
    "review",
    "reviews",
    "safe_html",
    "target_for",
    "this_notebook",
]
