"""The store on SQLite and PostgreSQL: ingest, idempotency, versions, pagination."""

from __future__ import annotations

import base64
import threading

import nbformat
import pytest
from cellops_server.store import InvalidCursor, NotFound, Store
from pydantic import ValidationError

from .records import execution, run

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()


def test_ingest_lists_notebook_run_and_executions_in_order(store: Store) -> None:
    store.ingest_json([run(), execution(1, "a = 1", "c1"), execution(2, "print(a)", "c2")])

    notebooks = store.list_notebooks().items
    assert [(n.path, n.runs, n.executions) for n in notebooks] == [("nb.ipynb", 1, 2)]
    (r,) = store.list_runs("nb.ipynb").items
    assert (r.user, r.kernel_spec["name"], r.executions, r.errors) == ("ada", "python3", 2, 0)
    items = store.list_executions(r.id).items
    assert [(e.seq, e.cell_id, e.code, e.status) for e in items] == [
        (1, "c1", "a = 1", "ok"),
        (2, "c2", "print(a)", "ok"),
    ]
    assert items[0].duration_ms == pytest.approx(250)
    assert items[0].outputs == [{"output_type": "stream", "name": "stdout", "text": "out 1\n"}]


def test_replaying_the_same_records_changes_nothing(store: Store) -> None:
    batch = [run(), execution(1, "a = 1"), execution(2, "a = 2")]
    store.ingest_json(batch)
    store.ingest_json(batch)
    store.ingest_json(batch[1:])

    (nb,) = store.list_notebooks().items
    assert (nb.runs, nb.executions, nb.versions) == (1, 2, 2)
    assert len(store.list_executions(store.list_runs().items[0].id).items) == 2


def test_a_later_record_for_the_same_request_updates_it(store: Store) -> None:
    running = execution(
        1, "import time; time.sleep(9)", status="running", finished_at=None, outputs=[]
    )
    store.ingest_json([run(), running])
    (e,) = store.list_notebook_executions("nb.ipynb").items
    assert (e.status, e.finished_at) == ("running", None)

    store.ingest_json([execution(1, "import time; time.sleep(9)")])
    assert store.get_execution(e.id).status == "ok"

    # A stale "running" snapshot arriving late never reopens a finished execution.
    store.ingest_json([running])
    assert store.get_execution(e.id).status == "ok"


def test_errors_are_kept_and_counted(store: Store) -> None:
    err = {"ename": "ValueError", "evalue": "boom", "traceback": ["Traceback", "ValueError: boom"]}
    store.ingest_json(
        [
            run(),
            execution(1, "ok = 1"),
            execution(2, "raise ValueError('boom')", status="error", error=err),
        ]
    )
    (r,) = store.list_runs().items
    assert (r.executions, r.errors) == (2, 1)
    failed = store.list_executions(r.id).items[1]
    assert failed.status == "error"
    assert failed.error is not None and (failed.error.ename, failed.error.evalue) == (
        "ValueError",
        "boom",
    )


def test_binary_outputs_become_blobs(store: Store) -> None:
    out = {
        "output_type": "display_data",
        "data": {"image/png": {"b64": PNG}, "text/plain": "<Figure>"},
    }
    store.ingest_json([run(), execution(1, "plot()", outputs=[out])])
    (e,) = store.list_notebook_executions("nb.ipynb").items
    ref = e.outputs[0]["data"]["image/png"]
    assert store.blobs.get(ref["blob"]) == base64.b64decode(PNG)
    assert ref["size"] == len(base64.b64decode(PNG))
    assert e.mime_types == ["image/png", "text/plain"]


def test_versions_follow_code_changes_new_cells_and_deletions(store: Store) -> None:
    store.ingest_json(
        [
            run(),
            execution(1, "a = 1", "c1"),  # v1: c1
            execution(2, "b = 2", "c2"),  # v2: c1, c2
            execution(3, "b = 2", "c2"),  # same code again: no new version
            execution(4, "a = 10\nprint(a)", "c1"),  # v3: c1 changed
            execution(5, "c = 3", "c3", deleted_cells=["c2"]),  # v4: c2 deleted, c3 added
            execution(6, "print('no cell id')", None),  # console-like: not part of a version
        ]
    )
    versions = store.list_versions("nb.ipynb").items
    assert [v.number for v in versions] == [4, 3, 2, 1]
    assert [v.cells for v in versions] == [2, 2, 2, 1]
    executions = store.list_notebook_executions("nb.ipynb").items
    assert [e.version for e in reversed(executions)] == [1, 2, 2, 3, 4, 4]

    v3, v4 = versions[1], versions[0]
    nb3 = nbformat.from_dict(store.version_notebook(v3.id))
    nbformat.validate(nb3)
    assert [(c.id, c.source) for c in nb3.cells] == [("c1", "a = 10\nprint(a)"), ("c2", "b = 2")]
    assert nb3.metadata["kernelspec"]["name"] == "python3"

    diff = store.diff_versions(versions[3].id, v3.id)
    assert [c.cell_id for c in diff.added] == ["c2"]
    (changed,) = diff.changed
    assert (changed.cell_id, changed.old, changed.new) == ("c1", "a = 1", "a = 10\nprint(a)")
    assert [(line.op, line.text) for line in changed.lines] == [
        ("delete", "a = 1"),
        ("insert", "a = 10"),
        ("insert", "print(a)"),
    ]
    diff = store.diff_versions(v3.id, v4.id)
    assert ([c.cell_id for c in diff.added], [c.cell_id for c in diff.removed], diff.unchanged) == (
        ["c3"],
        ["c2"],
        1,
    )


def test_versions_continue_across_runs_and_batches(store: Store) -> None:
    store.ingest_json([run(), execution(1, "x = 1", "c1")])
    store.ingest_json([run(key="run-2"), execution(1, "x = 2", "c1", run_key="run-2")])
    versions = store.list_versions("nb.ipynb").items
    assert [v.number for v in versions] == [2, 1]
    assert store.diff_versions(versions[1].id, versions[0].id).changed[0].new == "x = 2"


def test_pagination_walks_every_item_once(store: Store) -> None:
    store.ingest_json([run()] + [execution(i, f"x = {i}", f"c{i}") for i in range(1, 8)])
    run_id = store.list_runs().items[0].id
    seen, cursor = [], None
    while True:
        page = store.list_executions(run_id, cursor=cursor, limit=3)
        seen += [e.seq for e in page.items]
        if page.next is None:
            break
        cursor = page.next
    assert seen == [1, 2, 3, 4, 5, 6, 7]

    newest, cursor = [], None
    while True:
        page = store.list_versions("nb.ipynb", cursor=cursor, limit=2)
        newest += [v.number for v in page.items]
        if not (cursor := page.next):
            break
    assert newest == [7, 6, 5, 4, 3, 2, 1]


def test_bad_queries_raise_errors_that_say_what_to_fix(store: Store) -> None:
    store.ingest_json([run(), execution(1, "a = 1")])
    with pytest.raises(InvalidCursor):
        store.list_runs(cursor="not-a-cursor")
    with pytest.raises(ValueError, match="limit"):
        store.list_runs(limit=0)
    assert store.list_versions("missing.ipynb").items == []  # not recorded yet: empty
    with pytest.raises(NotFound):
        store.get_execution(999)
    with pytest.raises(NotFound):
        store.list_executions(999)


def test_invalid_records_are_refused_and_nothing_is_written(store: Store) -> None:
    store.ingest_json([run(), execution(1, "a = 1")])
    bad = execution(2, "b = 2")
    bad["status"] = "exploded"
    with pytest.raises(ValidationError):
        store.ingest_json([execution(3, "c = 3"), bad])
    assert store.list_notebooks().items[0].executions == 1


def test_recover_aborts_what_an_earlier_process_left_running(store: Store) -> None:
    store.ingest_json([run(), execution(1, "while True: pass", status="running", finished_at=None)])
    store.ingest_json(
        [
            {
                "kind": "recover",
                "source": "server-a",
                "instance": "process-2",
                "at": "2026-01-01T13:00:00+00:00",
            }
        ]
    )
    (e,) = store.list_notebook_executions("nb.ipynb").items
    assert e.status == "aborted"
    assert store.list_runs().items[0].ended_at is not None


def test_executions_of_an_unknown_run_are_kept(store: Store) -> None:
    store.ingest_json([execution(1, "a = 1", run_key="lost-run")])
    (r,) = store.list_runs("nb.ipynb").items
    assert r.executions == 1


def test_concurrent_writers_never_number_a_version_twice(store: Store) -> None:
    """Two servers ingesting into one notebook at once (row lock on PostgreSQL,
    the write lock on SQLite)."""
    store.ingest_json([run(key="a"), run(key="b")])
    errors: list[BaseException] = []

    def writer(key: str) -> None:
        try:
            for i in range(1, 21):
                store.ingest_json([execution(i, f"{key} = {i}", f"cell-{key}", run_key=key)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    numbers = []
    cursor = None
    while True:
        page = store.list_versions("nb.ipynb", cursor=cursor, limit=500)
        numbers += [v.number for v in page.items]
        if not (cursor := page.next):
            break
    assert sorted(numbers) == list(range(1, 41))


def test_a_rename_moves_history_between_the_records_around_it(store: Store) -> None:
    rename = {
        "kind": "rename",
        "from_path": "nb.ipynb",
        "to_path": "final.ipynb",
        "at": "2026-01-01T12:30:00+00:00",
    }
    store.ingest_json(
        [run(), execution(1, "a = 1"), rename, execution(2, "b = 2", "c2", notebook="final.ipynb")]
    )
    (nb,) = store.list_notebooks().items
    assert (nb.path, nb.executions, nb.versions) == ("final.ipynb", 2, 2)
    assert store.list_versions("nb.ipynb").items == []  # nothing stays under the old path
    assert store.list_runs("nb.ipynb").items == []


def test_renaming_a_folder_moves_the_notebooks_in_it_but_never_merges(store: Store) -> None:
    store.ingest_json(
        [
            run(key="r1", notebook="old/a.ipynb"),
            execution(1, "a", run_key="r1", notebook="old/a.ipynb"),
            run(key="r2", notebook="old/sub/b.ipynb"),
            execution(1, "b", run_key="r2", notebook="old/sub/b.ipynb"),
            run(key="r3", notebook="new/a.ipynb"),
            execution(1, "c", run_key="r3", notebook="new/a.ipynb"),
            {
                "kind": "rename",
                "from_path": "old",
                "to_path": "new",
                "at": "2026-01-01T13:00:00+00:00",
            },
        ]
    )
    paths = sorted(n.path for n in store.list_notebooks().items)
    # new/a.ipynb already had its own history: the old one stays where it was.
    assert paths == ["new/a.ipynb", "new/sub/b.ipynb", "old/a.ipynb"]


def test_a_recovery_applies_only_to_what_came_before_it_in_a_batch(store: Store) -> None:
    """The killed process's last records and the new process's recovery can share a batch."""
    recover = {
        "kind": "recover",
        "source": "server-a",
        "instance": "process-2",
        "at": "2026-01-01T13:00:00+00:00",
    }
    later = run(key="run-2", instance="process-2")
    store.ingest_json(
        [
            run(),
            execution(1, "x", status="running", finished_at=None),
            recover,
            later,
            execution(1, "y", run_key="run-2", status="running", finished_at=None),
        ]
    )
    statuses = {e.code: e.status for e in store.list_notebook_executions("nb.ipynb").items}
    assert statuses == {"x": "aborted", "y": "running"}
    ended = {r.id: r.ended_at for r in store.list_runs().items}
    assert sorted(v is None for v in ended.values()) == [False, True]
