"""The Jupyter server extension: wires the tap, the spool, the writer and the API together."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop, PeriodicCallback

from . import __version__
from .activity import ActivityHub
from .api.routes import embedded_handlers, openapi_document, team_client_handlers
from .capture.environment import LocalNotebooks, git_state
from .capture.policy import TrackingPolicy
from .capture.tap import TrackingKernelWebsocketConnection
from .capture.tracker import Tracker, now_iso
from .config import CellopsConfig
from .monitoring.drift import Thresholds
from .monitoring.watch import DeploymentWatcher, DriftSettings
from .private import private_dir
from .schemas import Status, TrackingSettings
from .serving.supervisor import ServingSupervisor, has_deployments, monitoring_env
from .spool import Spool, SpoolBusy, claim_slot, source_id
from .store import Store
from .team.forward import BackendClient
from .team.relay import EventRelay
from .webhooks.outbox import Settings as WebhookSettings
from .webhooks.process import DispatcherProcess
from .writer import WriterProcess

KERNEL_ACTIONS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"


class CellopsExtension(ExtensionApp):
    name = "cellops_server"
    classes = [CellopsConfig]

    def _link_jupyter_server_extension(self, serverapp: Any) -> None:
        super()._link_jupyter_server_extension(serverapp)
        # The tap must be in place before the server builds its web application. A class
        # chosen by the user (or a kernel gateway, whose default differs) is left alone.
        chosen = serverapp.config.ServerApp.get("kernel_websocket_connection_class")
        if chosen is None and not serverapp.config.GatewayClient.get("url"):
            serverapp.kernel_websocket_connection_class = TrackingKernelWebsocketConnection
        else:
            self.log.warning(
                "cellops: kernel_websocket_connection_class is configured (%s); executions are "
                "recorded only if it derives from %s",
                chosen,
                TrackingKernelWebsocketConnection.__name__,
            )

    def initialize_settings(self) -> None:
        self._background: set[asyncio.Future[None]] = set()
        self.cellops = CellopsConfig(parent=self.serverapp)
        cfg = self.cellops
        private_dir(cfg.home)  # the spool, the store and the artifacts: their owner's only
        self.team_client = bool(cfg.backend_url)
        self.store: Store | None = None
        self.backend: BackendClient | None = None
        # The writer process gets its settings by environment, so no URL or token shows in `ps`.
        writer_env = {**os.environ, "CELLOPS_DB_URL": cfg.db_url, "CELLOPS_TOKEN": cfg.token}
        writer_args = [
            "--batch-size",
            str(cfg.writer_batch_size),
            "--interval",
            str(cfg.writer_interval),
        ]
        if self.team_client:
            if not cfg.token:
                self.log.error(
                    "cellops: CELLOPS_BACKEND_URL is set but CELLOPS_TOKEN is not; records wait in the spool"
                )
            self.backend = BackendClient(cfg.backend_url, cfg.token)
            writer_args += ["--backend", cfg.backend_url]
        else:
            # The writer migrates too, so a database that is down at start-up only delays writing.
            self.store = Store(cfg.db_url, cfg.artifacts_dir, auto_migrate=False)
            self._try_migrate(self.store)
            writer_args += ["--artifacts", cfg.artifacts_dir]
        slot = self._claim_spool_slot(Path(cfg.home) / "spool")
        self.spool = Spool(slot)
        self.activity = ActivityHub()
        # A team client's local long polls wait on the hub; one relay fills it from the backend.
        self.relay = EventRelay(self.backend, self.activity) if self.backend else None
        loop = IOLoop.current()
        self.writer = WriterProcess(
            slot,
            writer_args,
            writer_env,
            # In team mode the backend publishes what it stores; the relay brings its events.
            on_stored=None
            if self.team_client
            else lambda paths: loop.add_callback(self.activity.publish, paths),
        )
        self.writer.start()
        self._writer_watch = PeriodicCallback(self.writer.ensure_running, 2000)
        self._writer_watch.start()
        self.tracker = Tracker(
            self.spool.append,  # the writer process picks records up within `writer_interval`
            source=source_id(slot),
            instance=uuid.uuid4().hex,
            max_text=cfg.max_output_text,
            max_blob=cfg.max_output_blob,
            on_new_run=self._look_up_git,
            defer=lambda delay, callback: IOLoop.current().call_later(delay, callback),
        )
        self.policy = TrackingPolicy(
            self.tracker,
            Path(cfg.home) / "tracking-settings.json",
            TrackingSettings(max_output_size=cfg.max_output_text),
            allowed=cfg.enabled,
        )
        self.spool.append(
            {
                "kind": "recover",
                "source": self.tracker.source,
                "instance": self.tracker.instance,
                "at": now_iso(),
            }
        )
        self.settings.update(
            cellops_tracker=self.tracker,
            cellops_store=self.store,
            cellops_backend=self.backend,
            cellops_status=self.status,
            cellops_policy=self.policy,
            cellops_activity=self.activity,
            cellops_relay=self.relay,
            cellops_max_artifact_size=cfg.max_artifact_size,
            cellops_openapi=openapi_document(),
            cellops_local_notebooks=LocalNotebooks(self.serverapp.root_dir),
            cellops_drift_thresholds=Thresholds.from_config(cfg),
        )
        self.serving = None if self.team_client else self._serving_supervisor()
        self.webhooks = self._webhook_dispatcher()
        events = self.serverapp.event_logger
        events.add_listener(schema_id=KERNEL_ACTIONS, listener=self._on_kernel_action)
        events.add_listener(schema_id=CONTENTS_EVENTS, listener=self._on_contents_event)
        self._follow_session_paths()
        # After the server has bound its port, before any kernel can start.
        IOLoop.current().add_callback(self._advertise_to_kernels)
        where = cfg.backend_url if self.team_client else cfg.db_url
        self.log.info("cellops %s: recording executed cells to %s", __version__, where)

    def _advertise_to_kernels(self) -> None:
        """Kernels inherit this process's environment: tell `import cellops` where this
        server is and how to authenticate, so it needs no setup (CELLOPS_URL wins if set),
        and whether to autolog."""
        app = self.serverapp
        if getattr(app, "sock", ""):
            return  # a Unix socket: no URL a kernel could use
        host = "127.0.0.1" if app.ip in ("", "0.0.0.0", "::", "localhost") else app.ip
        scheme = "https" if app.certfile else "http"
        os.environ["CELLOPS_SERVER_URL"] = f"{scheme}://{host}:{app.port}{app.base_url}"
        token = getattr(app.identity_provider, "token", "")
        if token:
            os.environ["CELLOPS_SERVER_TOKEN"] = token
        if self.team_client and self.cellops.token:
            # The team backend's serving listener knows members, not this server's token:
            # a deployment's predict() without its key authenticates as this member.
            os.environ["CELLOPS_SERVING_TOKEN"] = self.cellops.token
        if self.cellops.autolog:  # an explicit CELLOPS_AUTOLOG (e.g. =0) wins
            os.environ.setdefault("CELLOPS_AUTOLOG", "1")

    def _serving_supervisor(self) -> ServingSupervisor:
        """The serving listener on 127.0.0.1: started now if a deployment exists (they come
        back after a restart), else by the first deploy (``cellops_serving_wake``)."""
        cfg = self.cellops
        # Members call with this server's token; the router gets it by environment.
        token = getattr(self.serverapp.identity_provider, "token", "") or ""
        env = monitoring_env(
            cfg.serving_monitoring, cfg.serving_sample_rate, cfg.serving_samples_per_second
        )
        supervisor = ServingSupervisor(
            cfg.db_url,
            cfg.artifacts_dir,
            "127.0.0.1",
            cfg.serving_port,
            cfg.serving_workers,
            {**env, "CELLOPS_SERVING_MEMBER_TOKEN": token},
        )
        # Drift checked on its own, and the router's state changes told to the sidebars.
        self.watcher: DeploymentWatcher | None = None
        if self.store is not None:
            self.watcher = DeploymentWatcher(
                self.store.engine, self.activity, DriftSettings.from_config(cfg)
            )

        def wake() -> None:  # a deploy: serve it, watch it
            supervisor.start()
            if self.watcher is not None:
                self.watcher.start()

        self.settings.update(cellops_serving_url=supervisor.url, cellops_serving_wake=wake)
        if self.store is not None and has_deployments(self.store.engine):
            supervisor.start()
            IOLoop.current().add_callback(self.watcher.start)  # type: ignore[union-attr]
        self._serving_watch = PeriodicCallback(supervisor.ensure_running, 2000)
        self._serving_watch.start()
        return supervisor

    def _webhook_dispatcher(self) -> DispatcherProcess | None:
        """Webhooks delivered from this server's own store, by a process of their own (a
        team client's backend delivers the team's)."""
        cfg = self.cellops
        settings = WebhookSettings(
            cfg.webhook_allow_private_targets,
            cfg.webhook_max_attempts,
            cfg.webhook_timeout,
            cfg.webhook_backoff,
        )
        self.settings.update(cellops_webhook_settings=settings)
        if self.store is None:
            return None
        dispatcher = DispatcherProcess(cfg.db_url, self.activity, settings)
        self.settings.update(cellops_webhooks_wake=dispatcher.wake)
        IOLoop.current().add_callback(dispatcher.start)
        return dispatcher

    def _try_migrate(self, store: Store) -> None:
        try:
            store.migrate()
        except Exception as exc:
            self.log.warning(
                "cellops: store not reachable yet (%s); records wait in the spool", exc
            )

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            team_client_handlers("/") if self.team_client else embedded_handlers("/")
        )

    async def stop_extension(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        self._writer_watch.stop()
        self.writer.stop()
        if self.serving is not None:
            if self.watcher is not None:
                await self.watcher.stop()
            self._serving_watch.stop()
            self.serving.stop()
        self.spool.close()
        if self.store is not None:
            self.store.close()

    # -- runtime -----------------------------------------------------------------------------

    def status(self, notebook: str | None = None) -> Status:
        return Status(
            version=__version__,
            mode="team-client" if self.team_client else "embedded",
            tracking=self.tracker.enabled,
            notebook_tracking=None if notebook is None else self.policy.tracks(notebook),
            spool_pending=self.spool.pending(),
            backend_reachable=(self.writer.last_error is None) if self.team_client else None,
            last_error=self.writer.last_error,
        )

    def _follow_session_paths(self) -> None:
        """Tell the tracker when a session moves to another file. jupyter_server emits no
        event for it (a "Save as" is only a session update), so its update is wrapped."""
        sessions = getattr(self.serverapp, "session_manager", None)
        update = getattr(sessions, "update_session", None)
        if update is None:
            return

        async def update_session(session_id: str, **changes: Any) -> None:
            await update(session_id, **changes)
            if changes.get("path"):
                model = await sessions.get_session(session_id=session_id)
                kernel_id = (model.get("kernel") or {}).get("id")
                if kernel_id:
                    self.tracker.session_moved(kernel_id, changes["path"])

        sessions.update_session = update_session

    def _look_up_git(self, run_key: str, folder: str | None) -> None:
        if not folder:
            return

        async def look_up() -> None:
            git = await asyncio.get_running_loop().run_in_executor(None, git_state, folder)
            if git is not None:
                self.tracker.run_git_record(run_key, git)

        task = asyncio.ensure_future(look_up())
        self._background.add(task)  # keep a reference until done
        task.add_done_callback(self._background.discard)

    async def _on_kernel_action(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        # jupyter_events calls listeners with these keyword names.
        if (
            data.get("action") == "shutdown"
            and data.get("status") == "success"
            and data.get("kernel_id")
        ):
            self.tracker.shutdown(data["kernel_id"])

    async def _on_contents_event(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        source, path = data.get("source_path"), data.get("path")
        if not (source and path):
            return
        if data.get("action") == "rename":
            self.tracker.rename(source, path)
        elif data.get("action") == "copy":  # Duplicate; a copy starts its own history
            self.tracker.copy(source, path)

    # -- the local spool ----------------------------------------------------------------------------

    def _claim_spool_slot(self, root: Path) -> Path:
        """Each running Jupyter server owns one spool folder (spool.claim_slot), held while
        it runs; a restarted server takes its folder back and replays it."""
        try:
            slot, self._spool_lock = claim_slot(root)
        except SpoolBusy as exc:
            raise RuntimeError(f"cellops: {exc}") from None
        return slot
