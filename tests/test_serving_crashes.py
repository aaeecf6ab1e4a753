"""When a version is blamed for the deaths of its worker processes (serving/crashes.py): a
model that crashes every worker loading it, or a request that kills the worker predicting it,
fails its deployment with a reason; workers killed together from outside do not."""

from __future__ import annotations

from cellops_server.serving.crashes import INCIDENT, WINDOW, CrashBook

V3 = ("bc", 3)
KILLED = -9


def test_every_worker_dying_at_once_while_loading_is_one_crash() -> None:
    book = CrashBook()
    for dt in (0.0, 0.004, 0.3):  # two workers and the spare that took over, one kill
        assert book.note(V3, "load", KILLED, 100.0 + dt) is None


def test_a_version_that_crashes_its_restarted_workers_too_has_failed() -> None:
    book = CrashBook()
    assert book.note(V3, "load", KILLED, 100.0) is None
    assert book.note(V3, "load", KILLED, 100.0 + 0.1) is None  # the same incident
    reason = book.note(V3, "load", -11, 100.0 + INCIDENT + 1.5)  # the restarted workers
    assert reason == "version 3 crashes its worker process while loading (signal 11)"


def test_a_good_load_forgets_earlier_load_crashes() -> None:
    book = CrashBook()
    assert book.note(V3, "load", KILLED, 100.0) is None
    book.loaded(V3)
    assert book.note(V3, "load", KILLED, 200.0) is None
    assert book.note(("bc", 4), "load", 1, 200.0) is None  # versions are counted apart
    assert "exit code 1" in (book.note(("bc", 4), "load", 1, 205.0) or "")


def test_three_crashes_while_predicting_within_a_minute_fail_the_version() -> None:
    book = CrashBook()
    assert book.note(V3, "infer", -11, 0.0) is None
    assert book.note(V3, "infer", -11, 0.2) is None  # the other worker, at the same moment
    assert book.note(V3, "infer", -11, 10.0) is None
    reason = book.note(V3, "infer", -11, 20.0)
    assert reason is not None and "3 times in a minute while predicting (signal 11)" in reason
    assert "roll back" in reason


def test_crashes_while_predicting_a_minute_apart_do_not_add_up() -> None:
    book = CrashBook()
    for i in range(10):
        assert book.note(V3, "infer", -11, i * (WINDOW / 2 + 1)) is None
