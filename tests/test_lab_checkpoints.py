"""The test servers' checkpoints (tests/lab_checkpoints.py): a listing that a rename or a
delete overtakes between jupyter_server's existence check and its stat answers no
checkpoint, where jupyter_server's own class raises (a 500 in the browser's console)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.contents.filecheckpoints import AsyncFileCheckpoints
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

from tests.lab_checkpoints import ListingSurvivesAMove
from tests.support import run_coroutine


def list_while_moved_away(cls: type[AsyncFileCheckpoints], root: Path) -> list[dict[str, Any]]:
    """List a.ipynb's checkpoints; the checkpoint goes away after the existence check."""
    (root / "a.ipynb").write_text("{}")
    checkpoints = cls(root_dir=str(root))
    run_coroutine(checkpoints.create_checkpoint(_contents_manager(root), "a.ipynb"))
    checkpoint = checkpoints.checkpoint_path("checkpoint", "a.ipynb")
    real_stat = os.stat
    seen = 0

    def stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        nonlocal seen
        if os.fspath(path) == checkpoint:
            seen += 1
            if seen == 2:  # the existence check passed; the rename lands now
                os.rename(checkpoint, checkpoint + ".moved")
        return real_stat(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "stat", stat)
        return run_coroutine(checkpoints.list_checkpoints("a.ipynb"))


def _contents_manager(root: Path) -> AsyncLargeFileManager:
    return AsyncLargeFileManager(root_dir=str(root))


def test_the_race_is_real_in_jupyter_server(tmp_path: Path) -> None:
    try:
        list_while_moved_away(AsyncFileCheckpoints, tmp_path)
    except FileNotFoundError:
        return
    pytest.fail("jupyter_server survives the race now: tests/lab_checkpoints.py can go")


def test_the_test_servers_listing_answers_none(tmp_path: Path) -> None:
    assert list_while_moved_away(ListingSurvivesAMove, tmp_path) == []
    # Without the race it lists the checkpoint as jupyter_server does.
    checkpoints = ListingSurvivesAMove(root_dir=str(tmp_path))
    run_coroutine(checkpoints.create_checkpoint(_contents_manager(tmp_path), "a.ipynb"))
    assert [c["id"] for c in run_coroutine(checkpoints.list_checkpoints("a.ipynb"))] == [
        "checkpoint"
    ]
