"""Starts the serving router (``python -m cellops_server.serving``) and keeps it running.

Used by the Jupyter server extension (embedded mode) and `cellops serve --serving-port`.
The router holds a pipe on its stdin: when this process ends, even by SIGKILL, the pipe
closes and the router stops with its workers.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import sqlalchemy as sa

log = logging.getLogger("cellops.serving")


def has_deployments(engine: sa.Engine) -> bool:
    """Whether the store holds a deployment (False if it cannot be read yet)."""
    from ..store.tables import deployments

    try:
        with engine.connect() as conn:
            return conn.scalar(sa.select(deployments.c.id).limit(1)) is not None
    except sa.exc.SQLAlchemyError:
        return False


def monitoring_env(enabled: bool, sample_rate: float, samples_per_second: int) -> dict[str, str]:
    """The router's monitoring settings (its --no-monitoring, --sample-rate and
    --samples-per-second), passed by environment like the others."""
    return {
        "CELLOPS_SERVING_MONITORING": "1" if enabled else "0",
        "CELLOPS_SERVING_SAMPLE_RATE": repr(float(sample_rate)),
        "CELLOPS_SERVING_SAMPLES_PER_SECOND": str(int(samples_per_second)),
    }


class ServingSupervisor:
    def __init__(
        self,
        db_url: str,
        artifacts_dir: str,
        host: str,
        port: int,
        workers: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host, self.port, self.workers = host, port, workers
        # Settings by environment, so no database URL or token shows in `ps`.
        self.env = {
            **os.environ,
            **(env or {}),
            "CELLOPS_DB_URL": db_url,
            "CELLOPS_ARTIFACTS": artifacts_dir,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start the router unless it runs (idempotent: a deploy calls it to wake serving)."""
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                return
            cmd = [
                sys.executable,
                "-m",
                "cellops_server.serving",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--watch-stdin",
            ]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, env=self.env)
            log.info("cellops: serving listener starting on %s (pid %d)", self.url, self.proc.pid)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_running(self) -> None:
        """Restart a router that exited (not one that was never started)."""
        if self.proc is not None and self.proc.poll() is not None:
            self.restarts += 1
            log.warning(
                "cellops: the serving listener exited (%s); starting it again", self.proc.returncode
            )
            self.proc = None
            self.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self.lock:
            proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()  # the router stops on EOF
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
