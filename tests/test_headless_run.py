"""`cellops run`: a notebook executed headless, as a CI job calls it (a subprocess), and
recorded as a run like one in JupyterLab: embedded on SQLite, and against a team backend
on PostgreSQL (also while that backend is down)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
import sqlalchemy as sa
from cellops_server.headless.ci import ci_identity
from cellops_server.serving.deployments import Deployments
from cellops_server.store import Store
from cellops_server.store.tables import activity

from .support import CELLOPS_CLIENT_ENV, TeamBackend, free_port, zero_config_server

CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "CELLOPS_BACKEND_URL", "CELLOPS_DB_URL")

TRAIN = [
    ("alpha = 1.0\nrounds = 1", ["parameters"]),
    (
        "import json\nimport cellops\nfrom sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True)\n"
        "model = LogisticRegression(C=alpha, max_iter=300).fit(X, y)\n"
        "cellops.log_metrics({'accuracy': model.score(X, y)})\n"
        "cellops.log_params({'rounds': rounds})",
        [],
    ),
    (
        "mv = cellops.register(model, 'iris')\nprint(json.dumps({'version': mv.version}))",
        [],
    ),
]


def write_notebook(path: Path, cells: list[tuple[str, list[str]]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P3"}
    nb.cells = [nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in cells]
    for cell in nb.cells:
        if not cell.metadata["tags"]:
            del cell.metadata["tags"]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without cellops client settings or a CI's variables."""
    drop = {*CELLOPS_CLIENT_ENV, *CI_VARIABLES, "CELLOPS_AUTOLOG"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("GITHUB_")}
    return {**env, "CELLOPS_HOME": str(home), **extra}


def cellops_run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cellops_server.cli", "run", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=240,
    )


def runs_of(store: Store, notebook: str) -> list[Any]:
    return store.list_runs(notebook, limit=100).items


def executions_of(store: Store, run_id: int) -> list[Any]:
    return store.list_executions(run_id, limit=100).items


def finished_events(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(activity.c.data, activity.c.notebook).where(activity.c.type == "run.finished")
        )
        return [{**r.data, "notebook": r.notebook} for r in rows]


# -- embedded, on SQLite ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Store]]:
    """One cellops home (embedded SQLite) and a folder of notebooks, shared by the module."""
    root = tmp_path_factory.mktemp("headless")
    home = root / "home"
    store = Store(f"sqlite:///{home / 'cellops.db'}", str(home / "artifacts"))
    yield root, store
    store.close()


def test_parameters_go_into_a_tagged_cell_typed_and_recorded(
    local: tuple[Path, Store],
) -> None:
    root, store = local
    write_notebook(
        root / "params.ipynb",
        [
            ("a = 0\nb = 0.0\nc = False\nd = None\ne = 'x'\nf = 'y'", ["parameters"]),
            ("import json\nprint(json.dumps([type(v).__name__ for v in (a, b, c, d, e, f)]))", []),
        ],
    )
    (root / "params.yaml").write_text("a: 5\nd: {k: [1, 2]}\ne: from file\nf: from file\n")
    done = cellops_run(
        "params.ipynb",
        "--parameters-file", "params.yaml",
        "-p", "b", "2.5",
        "-p", "c", "true",
        "-p", "f", "plain text",
        "--output", "out/params.ipynb",
        env=clean_env(root / "home"),
        cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    out = nbformat.read(str(root / "out/params.ipynb"), as_version=4)
    injected = out.cells[1]
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert out.cells[0].metadata["tags"] == ["parameters"]
    for line in ("a = 5", "b = 2.5", "c = True", 'd = {"k": [1, 2]}', 'f = "plain text"'):
        assert line in injected.source, injected.source
    typed = json.loads(out.cells[2].outputs[0]["text"])
    assert typed == ["int", "float", "bool", "dict", "str", "str"]

    (run,) = runs_of(store, "params.ipynb")
    assert run.source == "headless" and run.outcome == "ok" and run.ci is None
    expected = {"a": 5, "b": 2.5, "c": True, "d": {"k": [1, 2]}, "e": "from file"}
    assert run.parameters == {**expected, "f": "plain text"}
    statuses = [(e.cell_id, e.status) for e in executions_of(store, run.id)]
    assert statuses == [(c.id, "ok") for c in out.cells]


def test_parameters_reach_a_notebook_whose_metadata_names_no_language(
    local: tuple[Path, Store],
) -> None:
    """Notebooks written by tools often carry only the kernel's name: the installed kernel
    says which language the injected cell is written in."""
    root, _ = local
    path = write_notebook(root / "bare.ipynb", [("n = 0", ["parameters"]), ("print(n * 2)", [])])
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    nbformat.write(nb, str(path))
    done = cellops_run(
        "bare.ipynb", "-p", "n", "21", "--output", "out/bare.ipynb",
        env=clean_env(root / "home"), cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = nbformat.read(str(root / "out/bare.ipynb"), as_version=4)
    assert out.cells[2].outputs[0]["text"] == "42\n"


def test_a_passing_run_logs_registers_and_finishes(local: tuple[Path, Store]) -> None:
    root, store = local
    write_notebook(root / "train.ipynb", TRAIN)
    done = cellops_run(
        "train.ipynb", "-p", "alpha", "0.5", "--output", "train.out.ipynb",
        env=clean_env(root / "home"), cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = nbformat.read(str(root / "train.out.ipynb"), as_version=4)
    version = json.loads(out.cells[-1].outputs[0]["text"])["version"]

    (run,) = runs_of(store, "train.ipynb")
    assert (run.source, run.outcome, run.parameters) == ("headless", "ok", {"alpha": 0.5})
    assert run.ended_at is not None and run.errors == 0 and run.executions == 4
    assert run.metrics["accuracy"] > 0.9 and run.params == {"rounds": 1}
    registered = store_version(store, "iris", version)
    assert registered.lineage.run_id == run.id
    cells = {e.id: e for e in executions_of(store, run.id)}
    assert "cellops.register" in cells[registered.lineage.execution_id].code
    (event,) = [e for e in finished_events(store) if e["run_id"] == run.id]
    assert event == {
        "run_id": run.id,
        "source": "headless",
        "outcome": "ok",
        "parameters": {"alpha": 0.5},
        "ci": None,
        "notebook": "train.ipynb",
    }


def store_version(store: Store, name: str, version: int) -> Any:
    from cellops_server.registry.store import Registry

    return Registry(store).get_version(name, version)


def test_a_failing_cell_stops_the_run_with_exit_1(local: tuple[Path, Store]) -> None:
    root, store = local
    write_notebook(
        root / "fails.ipynb",
        [("x = 1", []), ("print('before')\n1 / 0", []), ("print('never')", [])],
    )
    done = cellops_run(
        "fails.ipynb", "--output", "fails.out.ipynb", env=clean_env(root / "home"), cwd=root
    )
    assert done.returncode == 1
    assert "print('before')\n1 / 0" in done.stderr and "ZeroDivisionError" in done.stderr
    (run,) = runs_of(store, "fails.ipynb")
    assert run.outcome == "error" and run.errors == 1
    execs = executions_of(store, run.id)
    assert [e.status for e in execs] == ["ok", "error"]  # nothing after the failure
    assert execs[1].error.ename == "ZeroDivisionError"
    out = nbformat.read(str(root / "fails.out.ipynb"), as_version=4)
    assert out.cells[1].outputs[0]["text"] == "before\n" and out.cells[2].outputs == []


def test_a_cell_past_the_timeout_exits_124(local: tuple[Path, Store]) -> None:
    root, store = local
    write_notebook(root / "slow.ipynb", [("x = 1", []), ("import time\ntime.sleep(60)", [])])
    started = time.monotonic()
    done = cellops_run("slow.ipynb", "--timeout", "2", env=clean_env(root / "home"), cwd=root)
    assert done.returncode == 124, done.stderr
    assert time.monotonic() - started < 45
    assert "longer than 2 s" in done.stderr and "time.sleep(60)" in done.stderr
    (run,) = runs_of(store, "slow.ipynb")
    assert run.outcome == "timeout" and run.ended_at is not None
    assert [e.status for e in executions_of(store, run.id)] == ["ok", "aborted"]


def test_a_notebook_that_cannot_start_exits_3(local: tuple[Path, Store]) -> None:
    root, store = local
    env = clean_env(root / "home")
    write_notebook(root / "fine.ipynb", [("x = 1", [])])
    no_kernel = cellops_run("fine.ipynb", "--kernel", "no-such-kernel", env=env, cwd=root)
    assert no_kernel.returncode == 3 and "no such kernel" in no_kernel.stderr
    (root / "broken.ipynb").write_text("{not json")
    broken = cellops_run("broken.ipynb", env=env, cwd=root)
    assert broken.returncode == 3 and "cannot read broken.ipynb" in broken.stderr
    missing = cellops_run("missing.ipynb", env=env, cwd=root)
    assert missing.returncode == 3 and "no notebook at missing.ipynb" in missing.stderr
    assert runs_of(store, "fine.ipynb") == [] and runs_of(store, "broken.ipynb") == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--no-such-flag"], "unrecognized arguments"),
        (["-p", "1x", "2"], "not a valid variable name"),
        (["--parameters-file", "list.yaml"], "must hold a mapping"),
        (["--parameters-file", "bad.json"], "is not valid JSON"),
        (["--timeout", "-3"], "not a number of seconds above 0"),
        (["--cwd", "nowhere"], "no such folder"),
    ],
)
def test_usage_errors_exit_2(local: tuple[Path, Store], args: list[str], says: str) -> None:
    root, _ = local
    write_notebook(root / "fine.ipynb", [("x = 1", [])])
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "bad.json").write_text("{")
    done = cellops_run("fine.ipynb", *args, env=clean_env(root / "home"), cwd=root)
    assert done.returncode == 2 and says in done.stderr, done.stderr


def test_a_run_under_ci_carries_its_job(local: tuple[Path, Store]) -> None:
    root, store = local
    write_notebook(root / "ci" / "job.ipynb", [("import os\nprint(os.getcwd())", [])])
    env = clean_env(
        root / "home",
        CI="true",
        GITHUB_ACTIONS="true",
        GITHUB_SHA="0123abc",
        GITHUB_REF_NAME="main",
        GITHUB_SERVER_URL="https://github.example",
        GITHUB_REPOSITORY="team/churn",
        GITHUB_RUN_ID="42",
    )
    done = cellops_run("ci/job.ipynb", "--cwd", ".", "--output", "job.out.ipynb", env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    out = nbformat.read(str(root / "job.out.ipynb"), as_version=4)
    assert out.cells[0].outputs[0]["text"].strip() == str(root)  # --cwd
    (run,) = runs_of(store, "ci/job.ipynb")
    assert run.ci is not None and run.ci.model_dump() == {
        "system": "github",
        "commit": "0123abc",
        "branch": "main",
        "url": "https://github.example/team/churn/actions/runs/42",
    }


def test_ci_identity_of_gitlab_and_other_systems() -> None:
    gitlab = {"GITLAB_CI": "true", "CI_COMMIT_SHA": "c0ffee", "CI_COMMIT_REF_NAME": "dev"}
    assert ci_identity({**gitlab, "CI_JOB_URL": "https://gl/j/7"}) == {
        "system": "gitlab",
        "commit": "c0ffee",
        "branch": "dev",
        "url": "https://gl/j/7",
    }
    assert ci_identity({"CI": "true"}) == {
        "system": "ci",
        "commit": None,
        "branch": None,
        "url": None,
    }
    assert ci_identity({"CI": "false"}) is None and ci_identity({}) is None


def test_a_deploy_in_the_notebook_is_served_while_the_run_lasts(
    local: tuple[Path, Store],
) -> None:
    """As under JupyterLab: the notebook deploys what it registered and calls the endpoint
    (a smoke test in a pipeline); the listener stops with the run, the deployment stays in
    the store for the next JupyterLab to serve."""
    root, store = local
    port = free_port()
    write_notebook(
        root / "deploy.ipynb",
        [
            *TRAIN[:2],
            ("mv = cellops.register(model, 'to-deploy')", []),
            ("dep = cellops.deploy('to-deploy', name='smoke')\n"
             "print(json.dumps({'url': dep.url, 'state': dep.state,\n"
             "                  'predicted': [int(p) for p in dep.predict(X[:3])]}))", []),
        ],
    )  # fmt: skip
    env = clean_env(root / "home", CELLOPS_SERVING_PORT=str(port))
    done = cellops_run("deploy.ipynb", "--output", "deploy.out.ipynb", env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    out = nbformat.read(str(root / "deploy.out.ipynb"), as_version=4)
    said = json.loads(out.cells[3].outputs[0]["text"])
    assert said["state"] == "ready"
    assert said["url"].startswith(f"http://127.0.0.1:{port}/")
    assert said["predicted"] == [0, 0, 0]  # iris' first rows are all setosa
    with pytest.raises(requests.ConnectionError):  # the listener ended with the run
        requests.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=5)
    (deployment,) = [d for d in Deployments(store).list() if d.name == "smoke"]
    assert deployment.model == "to-deploy"


def test_a_deploy_is_served_on_another_port_while_the_serving_port_is_taken(
    local: tuple[Path, Store],
) -> None:
    """A JupyterLab on this machine holds the serving port: the run serves its deployment on
    a port of its own, says which, and the notebook's smoke test passes."""
    root, store = local
    write_notebook(
        root / "taken.ipynb",
        [
            *TRAIN[:2],
            ("mv = cellops.register(model, 'taken-port')", []),
            ("dep = cellops.deploy('taken-port', name='beside')\n"
             "print(json.dumps({'url': dep.url,\n"
             "                  'predicted': [int(p) for p in dep.predict(X[:3])]}))", []),
        ],
    )  # fmt: skip
    with socket.socket() as taken:  # as another serving listener would
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(root / "home", CELLOPS_SERVING_PORT=str(port))
        done = cellops_run("taken.ipynb", "--output", "taken.out.ipynb", env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    assert f"port {port} is in use" in done.stderr
    said = json.loads(
        nbformat.read(str(root / "taken.out.ipynb"), as_version=4).cells[3].outputs[0]["text"]
    )
    assert said["predicted"] == [0, 0, 0]
    served = int(said["url"].split("/")[2].rsplit(":", 1)[1])
    assert served != port
    assert f"127.0.0.1:{served}" in done.stderr
    assert [d.model for d in Deployments(store).list() if d.name == "beside"] == ["taken-port"]


# -- the same records as an interactive run ----------------------------------------------------

COMPARED = [
    ("x = 21", []),
    ("print('twice', x * 2)\nx * 2", []),
    ("from IPython.display import HTML, display\ndisplay(HTML('<b>bold</b>'))", []),
    ("import sys\nprint('warn', file=sys.stderr)", []),
]


def test_records_match_the_same_notebook_run_in_jupyter(tmp_path: Path) -> None:
    with zero_config_server(tmp_path) as server:
        nb_path = write_notebook(server.root / "compare.ipynb", COMPARED)
        nb = nbformat.read(str(nb_path), as_version=4)
        client = server.connect(server.new_session("compare.ipynb"))
        for cell in nb.cells:
            client.execute(cell.source, cell_id=cell.id)
        client.close()
        # Into the very store the Jupyter server records to: the sidebar shows both runs.
        done = cellops_run("compare.ipynb", env=clean_env(server.home), cwd=server.root)
        assert done.returncode == 0, done.stderr
        runs = server.api.wait_for(
            "runs",
            lambda b: len(b["items"]) == 2 and all(r["executions"] == 4 for r in b["items"]),
            notebook="compare.ipynb",
        )["items"]
        by_source = {r["source"]: r for r in runs}
        assert set(by_source) == {"interactive", "headless"}
        interactive, headless = by_source["interactive"], by_source["headless"]
        assert interactive["outcome"] is None and interactive["parameters"] is None
        assert headless["outcome"] == "ok"
        assert headless["kernel_spec"]["name"] == interactive["kernel_spec"]["name"]
        assert headless["user"] == interactive["user"]

        def shape(run: dict[str, Any]) -> list[dict[str, Any]]:
            page = server.api.cellops(f"runs/{run['id']}/executions")
            return [
                {
                    k: e[k]
                    for k in ("seq", "cell_id", "code", "status", "execution_count", "outputs")
                }
                for e in page["items"]
            ]

        assert shape(headless) == shape(interactive)
        versions = server.api.cellops("versions", notebook="compare.ipynb")["items"]
        # One per cell the interactive run added; the headless run's same code adds none.
        assert len(versions) == len(COMPARED)


# -- a team backend on PostgreSQL --------------------------------------------------------------


@pytest.fixture(scope="module")
def backend(
    module_pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TeamBackend, str]]:
    tmp = tmp_path_factory.mktemp("headless-team")
    team = TeamBackend(module_pg_url, tmp / "artifacts")
    token = team.add_user("pipeline", "editor")
    team.start()
    yield team, token
    team.stop()


def test_team_mode_records_to_the_backend(backend: tuple[TeamBackend, str], tmp_path: Path) -> None:
    team, token = backend
    write_notebook(tmp_path / "train.ipynb", TRAIN)
    env = clean_env(
        tmp_path / "home",
        CELLOPS_BACKEND_URL=team.url,
        CELLOPS_TOKEN=token,
        GITLAB_CI="true",
        CI_COMMIT_SHA="feed",
        CI_COMMIT_REF_NAME="main",
        CI_JOB_URL="https://gitlab.example/j/9",
    )
    done = cellops_run(
        "train.ipynb", "-p", "rounds", "3", "--output", "out.ipynb", env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "spool" not in done.stderr
    out = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    version = json.loads(out.cells[-1].outputs[0]["text"])["version"]
    api = team.api(token)
    (run,) = api.cellops("runs", notebook="train.ipynb")["items"]
    assert (run["source"], run["outcome"], run["parameters"]) == ("headless", "ok", {"rounds": 3})
    assert run["ci"] == {
        "system": "gitlab",
        "commit": "feed",
        "branch": "main",
        "url": "https://gitlab.example/j/9",
    }
    assert run["user"] == "pipeline" and run["params"] == {"rounds": 3}
    assert run["metrics"]["accuracy"] > 0.9
    mv = api.cellops(f"models/iris/versions/{version}")
    assert mv["lineage"]["run_id"] == run["id"] and mv["lineage"]["execution_id"] is not None
    feed = api.cellops("activity")["items"]
    finished = [a for a in feed if a["type"] == "run.finished"]
    assert finished and finished[0]["data"]["run_id"] == run["id"]


def test_backend_down_keeps_records_in_the_spool_until_it_returns(
    backend: tuple[TeamBackend, str], tmp_path: Path
) -> None:
    team, token = backend
    write_notebook(tmp_path / "offline.ipynb", [("x = 1", []), ("print(x + 1)", [])])
    env = clean_env(tmp_path / "home", CELLOPS_BACKEND_URL=team.url, CELLOPS_TOKEN=token)
    team.stop()
    try:
        done = cellops_run("offline.ipynb", env=env, cwd=tmp_path)
    finally:
        team.start()
    assert done.returncode == 0, done.stderr  # the notebook's outcome, not the backend's
    assert "wait in the spool" in done.stderr and str(tmp_path / "home") in done.stderr
    api = team.api(token)
    assert api.cellops("runs", notebook="offline.ipynb")["items"] == []

    # The next `cellops run` with this home sends them (then its own run).
    write_notebook(tmp_path / "next.ipynb", [("y = 2", [])])
    again = cellops_run("next.ipynb", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "spool" not in again.stderr, again.stderr
    (run,) = api.cellops("runs", notebook="offline.ipynb")["items"]
    assert run["source"] == "headless" and run["outcome"] == "ok" and run["executions"] == 2
    assert len(api.cellops("runs", notebook="next.ipynb")["items"]) == 1
