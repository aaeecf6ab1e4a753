"""Deployments from the notebook: ``cellops.deploy`` / ``predict`` / ``undeploy`` and the
ModelCard's Deploy button, in a real kernel of a real Jupyter server whose serving listener
(on a free port of its own) answers the predictions over HTTP.

The kernel clicks the card's buttons itself (``Button.click()`` runs the handler a browser
click runs) and prints what the card shows as JSON.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import JupyterServer, KernelClient, TeamBackend, free_port, zero_config_server
from .test_kernel_library import TRAIN, last_json

# Loading a model into serving workers takes seconds, and much longer on a busy machine.
pytestmark = pytest.mark.timeout(400)
UNREACHABLE = "http://127.0.0.1:9/"  # nothing listens: any request would fail to connect
WAIT = 180  # seconds a deployment may take to serve here (the default, 60, on a busy CI…)
HELPERS = f"""
import time
WAIT = {WAIT}
def soon(call, seconds=5):
    # The serving listener picks up a rotated key on its next look at the store (< 1 s).
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except cellops.RegistryError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
def refusal(call, seconds=5):
    # [type, message, status] of what call() raises once it does (None: it kept answering).
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            call()
        except Exception as exc:
            return [type(exc).__name__, str(exc), getattr(exc, 'status', None)]
        time.sleep(0.1)
"""


def run(client: KernelClient, code: str) -> dict[str, Any]:
    """Execute a cell that must succeed; answers {msg_id, stdout, stderr}."""
    result = client.execute(code, timeout=WAIT + 60)
    stream = {"stdout": "", "stderr": ""}
    for out in result["outputs"]:
        if out["type"] == "stream":
            stream[out["name"]] += out["text"]
        if out["type"] == "error":
            raise AssertionError("\n".join(out["traceback"]))
    return {"msg_id": result["msg_id"], **stream}


def caught(call: str) -> str:
    """Kernel code printing [type, message, status] of what ``call`` raises (or null)."""
    return (
        f"try:\n    {call}\n    print(json.dumps(None))\nexcept Exception as exc:\n"
        "    print(json.dumps([type(exc).__name__, str(exc), getattr(exc, 'status', None)]))\n"
    )


# -- arguments are checked before any request ---------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The library in this process, configured for a server that does not exist."""
    import cellops

    monkeypatch.setenv("CELLOPS_URL", UNREACHABLE)
    monkeypatch.setenv("CELLOPS_TOKEN", "t")
    cellops.reset_client()
    yield cellops
    cellops.reset_client()


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda c: c.deploy("iris", version=1, alias="champion"), "not both"),
        (lambda c: c.deploy("iris", name="no spaces"), "deployment name 'no spaces'"),
        (lambda c: c.deploy("iris", name="x" * 65), "1-64 letters"),
        (lambda c: c.deploy("iris", name="iris\n"), "is not valid"),
        (lambda c: c.deploy("iris", name="-iris"), "starting with a letter or digit"),
        (lambda c: c.deploy("m" * 100), "pass name="),  # a valid model name, too long here
        (lambda c: c.deploy("bad model"), "model name 'bad model'"),
        (lambda c: c.deploy("iris", version=0), "positive int"),
        (lambda c: c.deploy("iris", version=True), "positive int"),
        (lambda c: c.deploy("iris", version="2"), "positive int"),
        (lambda c: c.deploy("iris", alias="9lives"), "alias '9lives'"),
        (lambda c: c.deploy("iris", public="yes"), "public must be True or False"),
        (lambda c: c.deploy("iris", wait=-1), "wait must be a number of seconds"),
        (lambda c: c.get_deployment("a/b"), "deployment name 'a/b'"),
        (lambda c: c.undeploy(""), "deployment name ''"),
    ],
)
def test_bad_arguments_raise_before_any_request(offline: Any, call: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(")) as info:
        call(offline)
    assert not isinstance(info.value, offline.RegistryError)


def test_good_arguments_do_reach_for_the_server(offline: Any) -> None:
    # The contrast to the test above: valid arguments are sent (and fail to connect here).
    with pytest.raises(offline.ServerUnreachable, match=r"127\.0\.0\.1:9"):
        offline.deploy("iris", alias="champion", name="iris-live", public=True)


def test_changes_and_inputs_are_checked_before_any_request(offline: Any) -> None:
    import numpy as np
    import pandas as pd
    from cellops.deploy import Deployment, scoring_body

    dep = Deployment("iris", "iris", 1, urls={"invocations": UNREACHABLE + "invocations"})
    for traffic, words in (
        ({1: 90, 2: 20}, "add up to 100"),
        ({1: 50, 2: 30, 3: 20}, "one or two versions"),
        ({0: 100}, "positive int"),
        ({1: 100.0}, "int from 0 to 100"),
        ([(1, 100)], "one or two versions"),
    ):
        with pytest.raises(ValueError, match=words):
            dep.split(traffic)
    with pytest.raises(ValueError, match="positive int"):
        dep.rollback(-1)
    with pytest.raises(ValueError, match="alias"):
        dep.follow("")
    for rows, words in (
        (np.zeros(4), r"one row: X.reshape\(1, -1\)"),
        (np.zeros((0, 4)), "no rows"),
        ([[1.0, float("nan")]], "NaN"),
        (pd.Series([1.0, 2.0]), "takes rows"),
    ):
        with pytest.raises(ValueError, match=words):
            dep.predict(rows)

    # What predict() sends: MLflow scoring bodies; a DataFrame keeps its column names and
    # its missing values travel as null.
    frame = pd.DataFrame({"a": [1.5, None], "b": ["x", "y"]})
    assert scoring_body(frame) == (
        b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, "x"], [null, "y"]]}}'
    )
    assert scoring_body(np.arange(4.0).reshape(2, 2)) == b'{"inputs": [[0.0, 1.0], [2.0, 3.0]]}'
    assert scoring_body([[1, 2]]) == b'{"inputs": [[1, 2]]}'


# -- a real server, kernel and serving listener ------------------------------------------------


@pytest.fixture(scope="module")
def serving_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, serving_port: int) -> Iterator[JupyterServer]:
    args = [f"--CellopsConfig.serving_port={serving_port}"]
    with zero_config_server(tmp_path_factory.mktemp("deploy-kernel"), extra_args=args) as srv:
        yield srv


@pytest.fixture(scope="module")
def kernel(server: JupyterServer) -> Iterator[KernelClient]:
    """One kernel for the module (starting one and importing scikit-learn is the slow part)."""
    client = server.connect(server.new_session("deploy.ipynb"))
    run(
        client,
        TRAIN
        + HELPERS
        + "import numpy as np, pandas as pd\nfrom cellops.widgets import ModelCard\n",
    )
    yield client
    client.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_deploy_predict_and_undeploy_from_a_kernel(
    server: JupyterServer, kernel: KernelClient, serving_port: int
) -> None:
    name = unique("iris")
    deployed = run(
        kernel,
        f"mv = cellops.register(model, {name!r}, alias='champion')\n"
        f"dep = cellops.deploy({name!r}, alias='champion', name={name!r}, wait=WAIT)\n"
        "got = dep.predict(X[:5])\n"
        "frame = pd.DataFrame(X[:7], columns=[f'f{i}' for i in range(4)])\n"
        "print(json.dumps({'state': dep.state, 'version': dep.version, 'alias': dep.alias,\n"
        "    'url': dep.url, 'urls': dep.urls, 'key': dep.key, 'public': dep.public,\n"
        "    'same': bool((got == model.predict(X[:5])).all()), 'kind': type(got).__name__,\n"
        "    'rows': dep.predict(X[:5].tolist()).tolist(),\n"
        "    'expected': model.predict(X[:5]).tolist(),\n"
        "    'repr': repr(dep), 'html': dep._repr_html_()}))",
    )
    out = last_json(deployed["stdout"])
    assert out["state"] == "ready" and out["version"] == 1 and out["alias"] == "champion"
    assert out["same"] and out["kind"] == "ndarray" and out["rows"] == out["expected"]
    assert out["url"].startswith(f"http://127.0.0.1:{serving_port}/")
    assert out["url"] == out["urls"]["invocations"] and out["url"].endswith("/invocations")
    assert isinstance(out["key"], str) and len(out["key"]) >= 20 and not out["public"]
    assert name in out["repr"] and "ready" in out["repr"] and out["key"] not in out["repr"]
    assert out["url"] in out["html"] and out["key"] not in out["html"]

    # The API (what the sidebar shows) has it, without its key.
    listed = server.api.cellops(f"deployments/{name}")
    assert listed["state"] == "ready" and listed["model"] == name and "key" not in listed

    # Fetched again, a deployment has no key: predict() uses the kernel's own token.
    again = run(
        kernel,
        f"d2 = cellops.get_deployment({name!r})\n"
        "names = [d.name for d in cellops.deployments()]\n"
        "print(json.dumps({'key': d2.key, 'listed': "
        f"{name!r} in names, 'same': bool((d2.predict(X) == model.predict(X)).all())}}))",
    )
    assert last_json(again["stdout"]) == {"key": None, "listed": True, "same": True}

    # A wrong key is refused; a rotated key replaces the old one.
    keys = run(
        kernel,
        "old = dep.key\n"
        "bad = cellops.Deployment.from_json(d2.__dict__ | {'key': 'not-the-key'})\n"
        + caught("bad.predict(X[:1])")
        + "new = dep.rotate_key()\n"
        + "preds = soon(lambda: dep.predict(X[:2])).tolist()\n"
        + "stale = cellops.Deployment.from_json(d2.__dict__ | {'key': old})\n"
        + caught("stale.predict(X[:1])")
        + "print(json.dumps([new != old, dep.key == new, preds]))",
    )
    wrong, stale, (changed, kept, preds) = (
        last_json(line) for line in keys["stdout"].strip().splitlines()[-3:]
    )
    assert wrong[2] == 401 and "key" in wrong[1]
    assert stale[2] == 401
    assert changed and kept and preds == out["expected"][:2]

    # The name is taken: a second deploy says so, and changes nothing.
    twice = run(kernel, caught(f"cellops.deploy({name!r}, version=1, name={name!r})"))
    _kind, text, status = last_json(twice["stdout"])
    assert status == 409 and name in text, text

    gone = run(
        kernel,
        f"cellops.undeploy({name!r})\n"
        + caught(f"cellops.get_deployment({name!r})")
        + caught(f"cellops.undeploy({name!r})")
        + "print(json.dumps(refusal(lambda: dep.predict(X[:1]))))",
    )
    lookup, undeploy_again, predict_after = (
        last_json(line) for line in gone["stdout"].strip().splitlines()[-3:]
    )
    assert lookup[0] == "DeploymentNotFound" and f"no deployment named {name!r}" in lookup[1]
    assert undeploy_again[0] == "DeploymentNotFound" and undeploy_again[2] == 404
    assert predict_after is not None and predict_after[2] in (404, 410), predict_after


def test_rollback_and_canary_from_a_kernel(server: JupyterServer, kernel: KernelClient) -> None:
    name = unique("canary")
    out = run(
        kernel,
        f"v1 = cellops.register(model, {name!r})\n"
        "other = LogisticRegression(C=0.01, max_iter=1000).fit(X, y)\n"
        f"v2 = cellops.register(other, {name!r})\n"
        f"dep = cellops.deploy({name!r}, wait=WAIT)\n"  # neither version nor alias: the latest
        "first = dep.version\n"
        "same2 = bool((dep.predict(X) == other.predict(X)).all())\n"
        "dep.rollback(1, wait=WAIT)\n"
        "same1 = bool((dep.predict(X) == model.predict(X)).all())\n"
        "dep.split({1: 50, 2: 50}, wait=WAIT)\n"
        "split = dep.traffic\n"
        "both = {tuple(dep.predict(X).tolist()) for _ in range(30)}\n"
        f"cellops.undeploy({name!r})\n"
        "print(json.dumps({'first': first, 'same2': same2, 'same1': same1, 'split': split,\n"
        "    'alias': dep.alias, 'answers': len(both),\n"
        "    'differ': bool((model.predict(X) != other.predict(X)).any())}))",
    )
    got = last_json(out["stdout"])
    assert got["first"] == 2 and got["same2"] and got["same1"]
    assert sorted((t["version"], t["percent"]) for t in got["split"]) == [(1, 50), (2, 50)]
    if got["differ"]:  # both versions answered some of the 30 requests
        assert got["answers"] == 2


def test_a_model_the_server_does_not_trust_is_refused(
    server: JupyterServer, kernel: KernelClient
) -> None:
    # The kernel trusts its own class (register(trusted=…)); the server's allow-list does
    # not, so the deployment is refused with a reason and never serves.
    (server.root / "mymodels.py").write_text(
        "from sklearn.preprocessing import StandardScaler\n"
        "class MyScaler(StandardScaler):\n    pass\n"
    )
    name = unique("crafted")
    out = run(
        kernel,
        "import sys, os\nsys.path.insert(0, os.getcwd())\nfrom mymodels import MyScaler\n"
        "from sklearn.pipeline import make_pipeline\n"
        "pipe = make_pipeline(MyScaler(), LogisticRegression(max_iter=1000)).fit(X, y)\n"
        f"cellops.register(pipe, {name!r}, trusted=['mymodels.MyScaler'])\n"
        + caught(f"cellops.deploy({name!r}, wait=WAIT)"),
    )
    refused = last_json(out["stdout"])
    assert refused is not None and refused[0] in ("DeploymentFailed", "RegistryError"), refused
    assert "mymodels" in refused[1], refused
    state = server.api.request("GET", f"cellops/api/v1/deployments/{name}")
    assert state.status_code == 404 or state.json()["state"] == "failed", state.text


def record_drift_verdict(home: Path, deployment: str, model: str, *, drifted: bool) -> bool:
    """Record a drift check's verdict on ``deployment`` in the server's own store (SQLite
    under ``home``) through monitoring/drift.py's path; answers whether it was a change."""
    from cellops_server.monitoring.drift import _record_transition
    from cellops_server.schemas import DeploymentDrift, DriftReport, DriftTest, FeatureDrift
    from cellops_server.store import create_engine

    test = DriftTest(test="ks", statistic=0.6, threshold=0.1, p_value=1e-9, drifted=drifted)
    feature = FeatureDrift(
        feature="sepal_length", kind="numeric", samples=200, drifted=drifted, tests=[test]
    )
    report = DriftReport(
        version=1, samples=200, min_samples=50, drifted=drifted, features=[feature]
    )
    result = DeploymentDrift(deployment=deployment, window=60, drifted=drifted, versions=[report])
    engine = create_engine(f"sqlite:///{home / 'cellops.db'}")
    try:
        return _record_transition(engine, deployment, model, result)
    finally:
        engine.dispose()


SHOW_CARD = (
    "print(json.dumps({'deployment': card.deployment_status.value, "
    "'disabled': card.deploy_button.disabled, 'tooltip': card.deploy_button.tooltip, "
    "'in_card': card.deploy_row in card.children}))"
)


def test_model_card_deploy_button(
    server: JupyterServer, kernel: KernelClient, serving_port: int
) -> None:
    name = unique("card")
    before = run(
        kernel,
        f"card = ModelCard(model, name={name!r})\ncard.deploy_wait = WAIT\n"
        "card.deploy_button.click()\n" + SHOW_CARD,
    )
    shown = last_json(before["stdout"])
    # Nothing to deploy before registering: the button says so and a click does nothing.
    assert shown["in_card"] and shown["disabled"] and "Register" in shown["tooltip"]
    assert shown["deployment"] == ""
    assert server.api.request("GET", f"cellops/api/v1/deployments/{name}").status_code == 404

    deployed = run(kernel, "card.register_button.click()\ncard.deploy_button.click()\n" + SHOW_CARD)
    shown = last_json(deployed["stdout"])
    assert not shown["disabled"] and "version 1" in shown["tooltip"]
    html = shown["deployment"]
    assert 'data-state="ready"' in html and f"http://127.0.0.1:{serving_port}/" in html
    assert "cellops-deploy-key" in html  # the key, this once
    api = server.api.cellops(f"deployments/{name}")
    assert api["version"] == 1 and api["state"] == "ready" and api["urls"]["invocations"] in html

    # The card of version 2 switches the same deployment to version 2; no key is shown.
    switched = run(
        kernel,
        "other = LogisticRegression(C=0.01, max_iter=1000).fit(X, y)\n"
        f"cellops.register(other, {name!r})\n"
        f"card = ModelCard(None, {name!r}, version=2)\ncard.deploy_wait = WAIT\n"
        "card.deploy_button.click()\n"
        f"same = bool((cellops.get_deployment({name!r}).predict(X) == other.predict(X)).all())\n"
        "print(json.dumps(same))\n" + SHOW_CARD,
    )
    same, shown = (last_json(line) for line in switched["stdout"].strip().splitlines()[-2:])
    assert same and "version 2" in shown["deployment"]
    assert "cellops-deploy-key" not in shown["deployment"]
    assert server.api.cellops(f"deployments/{name}")["version"] == 2
    # No drift verdict yet (nothing sampled): no badge, rather than a reassuring "no drift".
    assert "cellops-deploy-drift" not in shown["deployment"]

    # A drift check finds the inputs drifted (recorded as monitoring/drift.py records it):
    # the card's refresh button shows the verdict the server reports, never the key again.
    assert record_drift_verdict(server.home, name, name, drifted=True)
    refreshed = run(kernel, "card.refresh_button.click()\n" + SHOW_CARD)
    html = last_json(refreshed["stdout"])["deployment"]
    assert "cellops-deploy-key" not in html and 'data-state="ready"' in html
    assert server.api.cellops(f"deployments/{name}")["drifted"] is True
    assert 'data-drifted="true"' in html and ">drift</span>" in html

    # A deployment name taken by another model: said in the card, nothing changes.
    taken = run(
        kernel,
        f"mine = {name + '-x'!r}\ncellops.register(model, mine)\n"
        f"card = ModelCard(None, mine, version=1)\ncard.deploy_name.value = {name!r}\n"
        "card.deploy_button.click()\n" + SHOW_CARD,
    )
    assert taken["stderr"] == ""
    shown = last_json(taken["stdout"])
    assert "cellops-card-error" in shown["deployment"] and "type another" in shown["deployment"]
    assert server.api.cellops(f"deployments/{name}")["model"] == name
    run(kernel, f"cellops.undeploy({name!r})")


# -- a team: roles -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A team backend (SQLite) and a viewer's token on it; answers 'url token'."""
    tmp = tmp_path_factory.mktemp("deploy-team")
    backend = TeamBackend(f"sqlite:///{tmp / 'team.db'}", tmp / "artifacts")
    token = backend.add_user("val", "viewer")
    saved = os.environ.get("CELLOPS_SERVING_PORT")
    os.environ["CELLOPS_SERVING_PORT"] = str(free_port())  # never the default port
    try:
        backend.start()
    finally:
        if saved is None:
            os.environ.pop("CELLOPS_SERVING_PORT")
        else:
            os.environ["CELLOPS_SERVING_PORT"] = saved
    yield f"{backend.url} {token}"
    backend.stop()


def test_a_viewer_may_not_deploy(viewer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import cellops

    url, token = viewer.split()
    monkeypatch.setenv("CELLOPS_URL", url)
    monkeypatch.setenv("CELLOPS_TOKEN", token)
    cellops.reset_client()
    try:
        with pytest.raises(cellops.PermissionDenied) as info:
            cellops.deploy("iris", version=1, name="iris-viewer")
        assert info.value.status == 403 and isinstance(info.value, PermissionError)
        with pytest.raises(cellops.DeploymentNotFound, match="no deployment named 'nothing'"):
            cellops.get_deployment("nothing")
        assert cellops.deployments() == []
    finally:
        cellops.reset_client()


def test_import_stays_light(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, cellops\nassert callable(cellops.deploy)\n"
            "print(sorted({'numpy', 'urllib.request', 'ipywidgets'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.stdout.strip() == "[]", proc.stderr
