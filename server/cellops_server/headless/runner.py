"""One headless run, start to end: read, parameterize, execute, record, report.

The run is recorded like a kernel session in JupyterLab (a run, its executions, the
notebook versions they make), plus what only a headless run has: its origin, its
parameters, the CI job it ran in and its outcome. The kernel's `import cellops` talks to
an API served for the run (embedded mode, service.py) or to the team backend.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from ..author import os_user
from ..capture.environment import git_state, repo_identity
from ..capture.tracker import Tracker
from ..config import CellopsConfig, configured
from ..private import private_dir
from ..spool import SpoolBusy, claim_slot
from .ci import ci_identity
from .parameters import inject
from .recording import Recording, backend_recording, store_recording

OK, FAILED, USAGE, NOT_STARTED, TIMED_OUT = 0, 1, 2, 3, 124
EXIT_CODES = {"ok": OK, "error": FAILED, "timeout": TIMED_OUT}


class NotStarted(Exception):
    """The notebook could not start: unreadable or invalid file, no such kernel, no store."""


class UsageError(Exception):
    """A setting the user must fix before anything runs (exit 2)."""


@dataclass
class RunOptions:
    notebook: str
    parameters: dict[str, Any] = field(default_factory=dict)
    kernel: str | None = None
    timeout: float | None = None  # per cell, seconds; None: no limit
    output: str | None = None
    cwd: str | None = None


@dataclass
class RunResult:
    outcome: str  # ok, error, timeout
    failure: str | None = None  # the failing cell and its traceback, for stderr
    left_in_spool: int = 0  # records not stored yet (the store or backend is down)
    spool: Path | None = None
    target: str = ""
    last_error: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


def read_notebook(path: str) -> NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise NotStarted(f"no notebook at {path}") from None
    except IsADirectoryError:
        raise NotStarted(f"{path} is a folder, not a notebook") from None
    except Exception as exc:  # not JSON, not a notebook, not readable
        raise NotStarted(f"cannot read {path} as a notebook: {exc}") from None


def recorded_path(file: Path) -> str:
    """The notebook's path as recorded: relative to where the command runs (a job's
    checkout, like JupyterLab's root), else absolute."""
    relative = os.path.relpath(file, Path.cwd())
    return str(file) if relative.startswith("..") else relative


def kernel_name_of(nb: NotebookNode, chosen: str | None) -> str:
    return chosen or (nb.metadata.get("kernelspec") or {}).get("name") or "python3"


def run(options: RunOptions, config: CellopsConfig | None = None) -> RunResult:
    return asyncio.run(execute(options, config or configured("cellops run")))


async def execute(options: RunOptions, config: CellopsConfig) -> RunResult:
    file = Path(options.notebook).resolve()
    nb = read_notebook(options.notebook)
    kernel = kernel_name_of(nb, options.kernel)
    try:
        nb = inject(nb, options.parameters, kernel)
    except Exception as exc:  # papermill knows no translator for this kernel's language
        raise UsageError(f"cannot inject the parameters: {exc}") from None
    cwd = Path(options.cwd).resolve() if options.cwd else file.parent
    if not cwd.is_dir():
        raise UsageError(f"--cwd {options.cwd}: no such folder")
    target = Target.open(config)
    result = RunResult("error")
    try:
        result = await target.run(nb, file, kernel, cwd, options)
    finally:
        target.close()
        target.finish(result)  # also when the kernel did not start: the lock is let go
    return result


@dataclass
class Target:
    """Where the run records to, and the API its kernel talks to."""

    config: CellopsConfig
    recording: Recording
    store: Any = None  # the local store in embedded mode
    api: Any = None  # service.LocalApi in embedded mode
    lock: Any = None

    @classmethod
    def open(cls, config: CellopsConfig) -> Target:
        private_dir(config.home)
        try:
            slot, lock = claim_slot(Path(config.home) / "spool")
        except SpoolBusy as exc:
            raise NotStarted(str(exc)) from None
        if config.backend_url:
            if not config.token:
                lock.close()
                raise UsageError(
                    "CELLOPS_BACKEND_URL is set but CELLOPS_TOKEN is not: a team backend "
                    "needs your personal token (`cellops users add NAME` on the backend)"
                )
            recording = backend_recording(slot, config.backend_url, config.token)
            return cls(config, recording, lock=lock)
        from ..store import Store

        try:
            store = Store(config.db_url, config.artifacts_dir)
        except Exception as exc:
            lock.close()
            raise NotStarted(f"cannot open the cellops store at {config.db_url}: {exc}") from None
        return cls(config, store_recording(slot, store), store=store, lock=lock)

    def kernel_environment(self) -> dict[str, str]:
        """What `import cellops` in the kernel reads to find its server (CELLOPS_URL, if
        the user set it, still wins)."""
        if self.store is not None:
            from .service import ServingConfig, serve_api

            c = self.config
            serving = ServingConfig(
                c.db_url, c.artifacts_dir, c.serving_port, c.serving_workers,
                c.serving_monitoring, c.serving_sample_rate, c.serving_samples_per_second,
            )  # fmt: skip
            self.api = serve_api(self.store, str(Path.cwd()), c.max_artifact_size, serving)
            env = {"CELLOPS_SERVER_URL": self.api.url, "CELLOPS_SERVER_TOKEN": self.api.token}
        else:
            url, token = self.config.backend_url, self.config.token
            env = {
                "CELLOPS_SERVER_URL": url,
                "CELLOPS_SERVER_TOKEN": token,
                "CELLOPS_SERVING_TOKEN": token,
            }
        if self.config.autolog:
            env["CELLOPS_AUTOLOG"] = os.environ.get("CELLOPS_AUTOLOG", "1")
        return env

    async def run(
        self, nb: NotebookNode, file: Path, kernel: str, cwd: Path, options: RunOptions
    ) -> RunResult:
        from .executor import TrackedNotebookClient

        os.environ.update(self.kernel_environment())  # the kernel inherits this process's
        loop = asyncio.get_running_loop()
        git = git_state(str(file.parent))
        tracker = Tracker(
            self.recording.append,
            source=self.recording.source,
            instance=self.recording.instance,
            max_text=self.config.max_output_text,
            max_blob=self.config.max_output_blob,
            on_new_run=lambda key, _folder: git and tracker.run_git_record(key, git),
            defer=loop.call_later,
        )
        client = TrackedNotebookClient(
            nb,
            tracker,
            notebook=recorded_path(file),
            user=os_user(),
            folder=str(file.parent),
            repo=repo_identity(str(file)),
            headless={
                "origin": "headless",
                "parameters": options.parameters or None,
                "ci": ci_identity(os.environ),
            },
            kernel_name=kernel,
            timeout=options.timeout,
            startup_timeout=120,
            resources={"metadata": {"path": str(cwd)}},
        )
        result = await self._execute(client)
        if options.output:
            write_output(client.nb, options.output)
        return result

    async def _execute(self, client: Any) -> RunResult:
        from jupyter_client.kernelspec import NoSuchKernel
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        outcome, failure = "error", None  # also if the command itself is interrupted
        try:
            await client.async_execute()
            outcome = "ok"
        except NoSuchKernel as exc:
            raise NotStarted(
                f"no such kernel: {exc.name!r} (see `jupyter kernelspec list`)"
            ) from None
        except CellTimeoutError as exc:
            outcome, failure = "timeout", str(exc)
        except CellExecutionError as exc:
            outcome, failure = "error", str(exc)
        except DeadKernelError as exc:
            outcome, failure = "error", f"the kernel died: {exc}"
        except Exception as exc:
            if client.kernel_id is None:  # it never got as far as a ready kernel
                raise NotStarted(f"the kernel did not start: {exc}") from None
            outcome, failure = "error", f"{type(exc).__name__}: {exc}"
        finally:
            client.end(outcome)
        return RunResult(outcome, failure)

    def close(self) -> None:
        if self.api is not None:
            self.api.stop()

    def finish(self, result: RunResult) -> RunResult:
        """Store the records (or leave them in the spool); say which in ``result``."""
        result.left_in_spool = self.recording.finish()
        result.spool = self.recording.slot
        result.target = self.recording.target
        result.last_error = self.recording.last_error
        if self.store is not None:
            self.store.close()
        if self.lock is not None:
            self.lock.close()
        return result


def write_output(nb: NotebookNode, path: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out))
