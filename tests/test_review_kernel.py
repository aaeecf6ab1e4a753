"""Team review from a real kernel: ``cellops.comment``, ``request_review``, ``review``, the
``Review`` widget and ModelCard's review, against a real Jupyter server (embedded) and a
real team backend (``cellops serve``, SQLite and PostgreSQL) reached through a member's
Jupyter server, as a team member's notebook reaches it.

The kernel clicks the widgets' buttons itself (``Button.click()`` runs the handler a
browser click runs) and prints their state as JSON.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest

from .attacks.conftest import Team, member_server
from .support import JupyterServer, KernelClient, zero_config_server
from .test_kernel_library import TRAIN, last_json

EVIL = (
    "Why **drop** these? <script>alert(1)</script> <img src=x onerror=alert(2)> "
    "[click](javascript:alert(3))"
)
SHOW_REVIEW = """
def shown(widget):
    kids = widget.children
    return {
        "classes": list(widget._dom_classes),
        "state": widget.state.value, "aliases": widget.aliases.value,
        "thread": widget.thread.value, "note": widget.note.value, "status": widget.status.value,
        "comment": widget.comment_row in kids, "request": widget.request_row in kids,
        "verdict": widget.verdict_row in kids,
    }
"""


def run(client: KernelClient, code: str, cell_id: str | None = None) -> dict[str, Any]:
    """Execute a cell (with JupyterLab's cell id, if given) that must succeed; answers
    {msg_id, stdout, stderr}."""
    result = client.execute(code, cell_id=cell_id, timeout=120)
    stream = {"stdout": "", "stderr": ""}
    for out in result["outputs"]:
        if out["type"] == "stream":
            stream[out["name"]] += out["text"]
        if out["type"] == "error":
            raise AssertionError("\n".join(out["traceback"]))
    return {"msg_id": result["msg_id"], **stream}


class _Active(HTMLParser):
    """Collects what a browser would run or follow: script-like elements, on* attributes,
    and links or sources that are not http(s), mailto or relative."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "iframe", "object", "embed", "svg"):
            self.found.append(tag)
        for name, value in attrs:
            squashed = "".join(ch for ch in (value or "") if ch > " ").lower()
            if name.startswith("on") or (
                name in ("href", "src") and squashed.startswith(("javascript:", "data:text"))
            ):
                self.found.append(f"{tag}[{name}={value}]")


def _no_script(html: str) -> None:
    parser = _Active()
    parser.feed(html)
    parser.close()
    assert parser.found == [], (parser.found, html)


# -- embedded: one user, the admin of their own store ----------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    with zero_config_server(tmp_path_factory.mktemp("review-kernel")) as srv:
        yield srv


@pytest.fixture
def kernel(server: JupyterServer, request: pytest.FixtureRequest) -> Iterator[KernelClient]:
    client = server.connect(server.new_session(f"{request.node.name}.ipynb"))
    run(client, TRAIN + SHOW_REVIEW + "from cellops.widgets import ModelCard, Review\n")
    yield client
    client.close()


def test_comment_on_the_running_cell_replies_and_other_targets(
    server: JupyterServer, kernel: KernelClient
) -> None:
    notebook = "test_comment_on_the_running_cell_replies_and_other_targets.ipynb"
    code = (
        f"c = cellops.comment({EVIL!r})\n"
        "print(json.dumps({'id': c.id, 'target': c.target, 'html': c.html, "
        "'author': c.author, 'repr': c._repr_html_()}))"
    )
    first = run(kernel, code, cell_id="cell-a")
    out = last_json(first["stdout"])
    # The kernel knew the notebook and the cell running the call.
    target = {k: v for k, v in out["target"].items() if k not in ("owner", "code_sha")}
    assert target == {"kind": "cell", "notebook": notebook, "cell_id": "cell-a"}
    # …and the code it ran, which the comment is anchored to (its execution is recorded later).
    assert out["target"]["code_sha"] == hashlib.sha256(code.encode()).hexdigest()
    assert "<strong>drop</strong>" in out["html"]
    _no_script(out["html"])
    _no_script(out["repr"])
    assert 'class="cellops-comment-body"' in out["repr"]
    root = out["id"]

    # A reply from the same cell goes to that thread; a reply elsewhere names its target.
    reply = run(
        kernel,
        f"r = cellops.comment('Agreed, *outliers*', reply_to={root})\n"
        "print(json.dumps({'parent': r.parent_id, 'target': r.target}))",
        cell_id="cell-a",
    )
    assert last_json(reply["stdout"])["parent"] == root
    elsewhere = run(
        kernel,
        f"try:\n    cellops.comment('me too', reply_to={root})\n"
        "except cellops.RegistryError as exc:\n    print(json.dumps([exc.status, str(exc)]))",
        cell_id="cell-b",
    )
    status, text = last_json(elsewhere["stdout"])
    assert status == 400 and "name its target too" in text
    listed = run(
        kernel,
        f"items = cellops.comments(notebook={notebook!r}, cell='cell-a')\n"
        "here = cellops.comments()\n"
        "print(json.dumps([[c.id, c.parent_id, c.author] for c in items] + "
        "[[c.id for c in here]]))",
        cell_id="cell-a",
    )
    got = last_json(listed["stdout"])
    assert [row[1] for row in got[:-1]] == [None, root]  # oldest first, the reply after
    assert got[-1] == [row[0] for row in got[:-1]]
    # The API (what the sidebar reads) has them too.
    api_items = server.api.cellops("comments", notebook=notebook, cell="cell-a")["items"]
    assert [c["id"] for c in api_items] == got[-1]

    # An execution and a run: the ids the sidebar shows.
    execution = server.api.wait_for(
        "executions",
        lambda b: any(e["msg_id"] == first["msg_id"] for e in b["items"]),
        notebook=notebook,
        limit=500,
    )
    [row] = [e for e in execution["items"] if e["msg_id"] == first["msg_id"]]
    other = run(
        kernel,
        f"a = cellops.comment('slow cell', execution={row['id']})\n"
        f"b = cellops.comment('this run looks off', run={row['run_id']})\n"
        "print(json.dumps([a.target, b.target, "
        f"[c.body for c in cellops.comments(execution={row['id']})]]))",
    )
    assert last_json(other["stdout"]) == [
        {"kind": "execution", "id": row["id"]},
        {"kind": "run", "id": row["run_id"]},
        ["slow cell"],
    ]


def recorded(server: JupyterServer, notebook: str, msg_id: str) -> None:
    server.api.wait_for(
        "executions",
        lambda b: any(e["msg_id"] == msg_id for e in b["items"]),
        notebook=notebook,
        limit=500,
    )


def test_a_comment_written_by_its_own_cell_is_not_outdated(
    server: JupyterServer, kernel: KernelClient
) -> None:
    notebook = "test_a_comment_written_by_its_own_cell_is_not_outdated.ipynb"
    recorded(server, notebook, run(kernel, "x = 1", cell_id="cell-o")["msg_id"])
    said = run(kernel, "cellops.comment('about this code')", cell_id="cell-o")
    recorded(server, notebook, said["msg_id"])
    [c] = server.api.cellops("comments", notebook=notebook)["items"]
    assert not c["outdated"]
    recorded(server, notebook, run(kernel, "x = 2", cell_id="cell-o")["msg_id"])
    [c] = server.api.cellops("comments", notebook=notebook)["items"]
    assert c["outdated"]  # the code it was written on has changed since


def test_comment_errors_say_what_to_fix(server: JupyterServer, kernel: KernelClient) -> None:
    cases = {
        "empty": "cellops.comment('   ')",
        "two": "cellops.comment('x', run=1, execution=2)",
        "half": "cellops.comment('x', model='churn')",
        "bool": "cellops.comment('x', execution=True)",
        "verdict": "cellops.review('churn', 1, 'lgtm')",
        "nobody": "cellops.request_review('churn', 1, [])",
        "missing": "cellops.comment('x', execution=999999)",
        "no-model": "cellops.comment('x', model='no-such-model', version=1)",
        "huge": "cellops.comment('x' * 10001, execution=1)",
    }
    code = "errors = {}\n"
    for key, call in cases.items():
        code += (
            f"try:\n    {call}\nexcept Exception as exc:\n"
            f"    errors[{key!r}] = [type(exc).__name__, str(exc), getattr(exc, 'status', None)]\n"
        )
    out = last_json(run(kernel, code + "print(json.dumps(errors))", cell_id="c1")["stdout"])
    assert set(out) == set(cases), out  # every one raised
    assert out["empty"][0] == "ValueError" and "needs some text" in out["empty"][1]
    assert out["two"][0] == "NoTarget" and "one target" in out["two"][1]
    assert "model= and version=" in out["half"][1]
    assert "positive int" in out["bool"][1]
    assert "'approve' or 'request_changes'" in out["verdict"][1]
    assert "at least one reviewer" in out["nobody"][1]
    assert out["missing"][2] == 404 and out["no-model"][2] == 404
    assert "10,000" in out["huge"][1]
    # Nothing was stored by any of them.
    assert server.api.cellops("comments", execution=1)["items"] == []

    # Code that is not a cell with an id (a console, a script) must name its target.
    nocell = run(
        kernel,
        "try:\n    cellops.comment('x')\nexcept Exception as exc:\n"
        "    print(json.dumps([type(exc).__name__, str(exc)]))",
    )
    name, text = last_json(nocell["stdout"])
    assert name == "NoTarget" and "pass notebook= and cell=" in text


def test_model_card_and_review_widget_in_embedded_mode(
    server: JupyterServer, kernel: KernelClient
) -> None:
    name = f"card-{uuid.uuid4().hex[:6]}"
    registered = run(
        kernel,
        f"card = ModelCard(model, name={name!r})\ncard.register_button.click()\n"
        "print(json.dumps({'status': card.status.value, 'review': shown(card.review)}))",
    )
    out = last_json(registered["stdout"])
    assert f"Registered <b>{name}</b> version <b>1</b>" in out["status"]
    review = out["review"]
    assert "cellops-review-widget" in review["classes"]
    assert 'class="cellops-review-state" data-state="none"' in review["state"]
    assert (
        'data-target-kind="model_version"' in review["thread"]
        and "No comments" in (review["thread"])
    )
    # The Jupyter user is admin, but the version is theirs: comment and ask, never approve.
    assert review["comment"] and review["request"] and not review["verdict"]
    assert "You registered this version" in review["note"]

    commented = run(
        kernel,
        "box = card.review\n"
        f"box.comment_box.value = {EVIL!r}\n"
        "box.send_button.click()\n"
        "print(json.dumps(shown(box) | {'box': box.comment_box.value}))",
    )
    out = last_json(commented["stdout"])
    assert out["status"].endswith("Commented.</div>") and out["box"] == ""
    assert (
        "<strong>drop</strong>" in out["thread"]
        and 'class="cellops-comment-author"' in (out["thread"])
    )
    _no_script(out["thread"])

    # An empty comment or a reviewer who does not exist: said in the widget, no traceback.
    failed = run(
        kernel,
        "box.send_button.click()\nfirst = box.status.value\n"
        "box.reviewers.value = 'nobody-by-that-name'\nbox.request_button.click()\n"
        "print(json.dumps([first, box.status.value]))",
    )
    assert failed["stderr"] == ""
    empty, unknown = last_json(failed["stdout"])
    assert "cellops-card-error" in empty and "needs some text" in empty
    assert "cellops-card-error" in unknown and "nobody-by-that-name" in unknown

    # The card of a version registered earlier shows its review and the comment.
    again = run(
        kernel,
        f"old = ModelCard(cellops.get_version({name!r}, 1))\n"
        f"by_number = ModelCard(None, {name!r}, version=1)\n"
        "print(json.dumps([shown(old.review), by_number.review.thread.value, "
        "old.summary.value]))",
    )
    old, thread, summary = last_json(again["stdout"])
    assert "<strong>drop</strong>" in old["thread"] and thread == old["thread"]
    assert f"<b>{name}</b> version <b>1</b>" in summary
    missing = run(
        kernel,
        f"gone = ModelCard(None, {name!r}, version=99)\nprint(json.dumps(gone.status.value))",
    )
    assert "cellops-card-error" in last_json(missing["stdout"])


# -- a team: roles, reviews and protected aliases ---------------------------------------------


@pytest.fixture(scope="module")
def alice(team: Team, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    for name, role in (("cora", "commenter"), ("vera", "viewer"), ("ada", "approver")):
        if name not in team.tokens:
            team.tokens[name] = team.add_user(name, role)
    server = member_server(team, tmp_path_factory.mktemp("review-members"), "alice")
    yield server
    server.stop()


def as_member(team: Team, who: str | None) -> str:
    """Kernel code that makes the library talk to the team backend as ``who`` (a personal
    token in CELLOPS_URL/CELLOPS_TOKEN), or, with None, through alice's Jupyter server."""
    if who is None:
        return "os.environ.pop('CELLOPS_URL', None)\ncellops.reset_client()\n"
    return (
        f"os.environ['CELLOPS_URL'] = {team.url!r}\n"
        f"os.environ['CELLOPS_TOKEN'] = {team.tokens[who]!r}\n"
        "cellops.reset_client()\n"
    )


def caught(call: str) -> str:
    return (
        f"try:\n    {call}\n    print(json.dumps(None))\nexcept Exception as exc:\n"
        "    print(json.dumps([type(exc).__name__, str(exc), isinstance(exc, PermissionError),"
        " getattr(exc, 'failed', None)]))\n"
    )


def test_team_review_from_kernels(team: Team, alice: JupyterServer) -> None:
    kernel = alice.connect(alice.new_session("team-review.ipynb"))
    admin = team.as_("admin")
    name = f"churn-{uuid.uuid4().hex[:6]}"
    run(kernel, "import os\n" + TRAIN + SHOW_REVIEW + "from cellops.widgets import Review\n")

    # alice (editor) registers through her Jupyter server; an admin protects two aliases.
    out = run(
        kernel,
        'cellops.log_metrics({"accuracy": model.score(X, y)})\n'
        f"mv = cellops.register(model, {name!r})\nprint(mv.version)",
    )
    assert out["stdout"].strip() == "1"
    policy = {
        "protected_aliases": {
            "production": {
                "min_approvals": 1,
                "metric_gates": [{"metric": "accuracy", "op": ">=", "value": 0.5}],
            },
            "gold": {
                "min_approvals": 0,
                "metric_gates": [{"metric": "accuracy", "op": ">=", "value": 0.9999}],
            },
        }
    }
    put = admin.request("PUT", f"cellops/api/v1/models/{name}/policy", json=policy)
    assert put.status_code == 200, put.text

    # The cell alice runs gets her comment (the team backend knows her notebook).
    alice.api.wait_for("runs", lambda b: b["items"], notebook="team-review.ipynb")
    said = run(
        kernel,
        "c = cellops.comment('Check the class balance, @ada')\n"
        "print(json.dumps([c.target, c.author, c.mentions]))",
        cell_id="train-cell",
    )
    target, author, mentions = last_json(said["stdout"])
    assert target["kind"] == "cell" and target["cell_id"] == "train-cell"
    assert target["notebook"] == "team-review.ipynb" and author == "alice"
    assert mentions == ["ada"]

    # A protected alias refuses the unreviewed version, saying each rule that fails.
    refused = last_json(
        run(kernel, caught(f"cellops.set_alias({name!r}, 'production', 1)"))["stdout"]
    )
    kind, text, _perm, failed = refused
    assert kind == "PromotionRefused", refused
    assert [f["rule"] for f in failed] == ["min_approvals"]
    assert failed[0]["message"] in text and "override=" in text

    asked = run(
        kernel,
        f"r = cellops.request_review({name!r}, 1, ['ada'])\n"
        f"w = Review({name!r}, 1)\nprint(json.dumps([r.state, r.requested, shown(w)]))",
    )
    state, requested, widget = last_json(asked["stdout"])
    assert state == "requested" and requested == ["ada"]
    assert widget["comment"] and widget["request"] and not widget["verdict"]  # an editor
    assert 'data-state="requested"' in widget["state"] and "waiting for ada" in widget["state"]
    assert 'data-alias="production"' in widget["aliases"]
    assert "production: " in widget["aliases"] and "gold: " in widget["aliases"]
    assert "Check the class balance" not in widget["thread"]  # that one is on the cell

    # vera (viewer) reads but cannot comment; the error names the role it takes.
    viewer = run(
        kernel,
        as_member(team, "vera")
        + f"w = Review({name!r}, 1)\nprint(json.dumps(shown(w)))\n"
        + caught(f"cellops.comment('hi', model={name!r}, version=1)"),
    )
    widget_line, error_line = viewer["stdout"].strip().splitlines()[-2:]
    widget = json.loads(widget_line)
    assert not (widget["comment"] or widget["request"] or widget["verdict"])
    assert "Read only: your role is viewer" in widget["note"]
    kind, text, is_permission, _ = json.loads(error_line)
    assert kind == "PermissionDenied" and is_permission and "commenter" in text

    # cora (commenter) comments but cannot ask for reviews.
    commenter = run(
        kernel,
        as_member(team, "cora")
        + f"cellops.comment('Looks fine to me', model={name!r}, version=1)\n"
        + caught(f"cellops.request_review({name!r}, 1, ['ada'])"),
    )
    kind, text, is_permission, _ = last_json(commenter["stdout"])
    assert kind == "PermissionDenied" and "editor" in text

    # ada (approver) approves from the widget, with a comment that must not run.
    approved = run(
        kernel,
        as_member(team, "ada")
        + f"w = Review({name!r}, 1)\nbefore = shown(w)\n"
        + "w.comment_box.value = 'LGTM <script>alert(1)</script>'\n"
        + "w.approve_button.click()\nprint(json.dumps([before, shown(w)]))",
    )
    before, after = last_json(approved["stdout"])
    assert before["verdict"] and before["comment"] and before["request"]
    assert after["status"].endswith("Approved.</div>"), after["status"]
    assert 'data-state="approved"' in after["state"] and "approved by ada" in after["state"]
    assert "LGTM" in after["thread"] and "Looks fine to me" in after["thread"]
    _no_script(after["thread"])
    assert "production: ready" in after["aliases"]

    # ada's own version: no verdict buttons, and the API refuses too.
    own = run(
        kernel,
        f"cellops.register(model, {name + '-ada'!r})\n"
        f"w = Review({name + '-ada'!r}, 1)\nprint(json.dumps(shown(w)))\n"
        + caught(f"cellops.review({name + '-ada'!r}, 1, 'approve')"),
    )
    widget_line, error_line = own["stdout"].strip().splitlines()[-2:]
    widget = json.loads(widget_line)
    assert not widget["verdict"] and "You registered this version" in widget["note"]
    kind, text, is_permission, _ = json.loads(error_line)
    assert kind == "PermissionDenied" and is_permission

    # Back to alice: an editor cannot approve; production now moves; gold still refuses, and
    # only an admin may override.
    back = run(
        kernel,
        as_member(team, None)
        + caught(f"cellops.review({name!r}, 1, 'approve')")
        + f"cellops.set_alias({name!r}, 'production', 1)\n"
        + caught(f"cellops.set_alias({name!r}, 'gold', 1)")
        + caught(f"cellops.set_alias({name!r}, 'gold', 1, override='demo tomorrow')"),
    )
    editor_verdict, gold, alice_override = (
        json.loads(line) for line in back["stdout"].strip().splitlines()[-3:]
    )
    assert editor_verdict[0] == "PermissionDenied" and "approver" in editor_verdict[1]
    assert gold[0] == "PromotionRefused" and gold[3]
    assert all(f["rule"].startswith("metric") for f in gold[3])
    assert "accuracy" in gold[1]
    assert alice_override[0] == "PermissionDenied"
    model = alice.api.cellops(f"models/{name}")
    assert model["aliases"] == {"production": 1}

    overridden = run(
        kernel,
        as_member(team, "admin")
        + f"cellops.set_alias({name!r}, 'gold', 1, override='demo tomorrow')\n"
        + as_member(team, None)
        + f"print(json.dumps(cellops.get_version({name!r}, 1).review))",
    )
    assert last_json(overridden["stdout"])["state"] == "approved"
    assert admin.cellops(f"models/{name}")["aliases"] == {"production": 1, "gold": 1}
    kernel.close()


def test_card_with_a_protected_alias_says_the_rules_and_stores_nothing(
    team: Team, alice: JupyterServer
) -> None:
    kernel = alice.connect(alice.new_session("card-protected.ipynb"))
    name = f"guarded-{uuid.uuid4().hex[:6]}"
    run(kernel, TRAIN + "from cellops.widgets import ModelCard\n")
    run(kernel, f"cellops.register(model, {name!r})")
    policy = {"protected_aliases": {"production": {"min_approvals": 1}}}
    put = team.as_("admin").request("PUT", f"cellops/api/v1/models/{name}/policy", json=policy)
    assert put.status_code == 200, put.text
    out = run(
        kernel,
        f"card = ModelCard(model, name={name!r}, alias='production')\n"
        "card.register_button.click()\n"
        "print(json.dumps([card.status.value, card.review is None]))",
    )
    status, no_review = last_json(out["stdout"])
    assert "cellops-card-error" in status and "PromotionRefused" in status, status
    assert "approval" in status and no_review
    versions = alice.api.cellops(f"models/{name}/versions")["items"]
    assert [v["version"] for v in versions] == [1]  # the refused registration stored nothing
    kernel.close()
