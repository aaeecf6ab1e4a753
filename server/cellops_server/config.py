"""The settings users set, as traitlets on one configurable class.

Set them in ``jupyter_server_config.py`` (``c.CellopsConfig.db_url = ...``), on the
command line (``--CellopsConfig.db_url=...``) or through the environment variables
named in each help string.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, Float, Int, TraitError, Unicode, default, validate
from traitlets.config import Configurable


def default_home() -> Path:
    """Where the embedded store lives: ``<jupyter data dir>/cellops``."""
    return Path(os.environ.get("CELLOPS_HOME") or Path(jupyter_data_dir()) / "cellops")


def default_db_url(home: Path | None = None) -> str:
    """``CELLOPS_DB_URL`` if set, else the embedded SQLite file under the cellops home."""
    env = os.environ.get("CELLOPS_DB_URL")
    if env:
        return env
    return f"sqlite:///{(home or default_home()) / 'cellops.db'}"


class CellopsConfig(Configurable):
    """Where cellops stores what it records, and how much it keeps."""

    enabled = Bool(True, config=True, help="Record executed cells at all.")

    home = Unicode(
        config=True,
        help="Folder for the embedded database, artifacts and the local spool "
        "(env CELLOPS_HOME; default <jupyter data dir>/cellops).",
    )

    db_url = Unicode(
        config=True,
        help="SQLAlchemy URL of the store (env CELLOPS_DB_URL; default SQLite in `home`). "
        "Plain postgresql://user@host/db URLs use psycopg 3.",
    )

    artifacts_dir = Unicode(
        config=True, help="Content-addressed blob store folder (default <home>/artifacts)."
    )

    backend_url = Unicode(
        config=True,
        help="URL of a team backend (`cellops serve`), e.g. http://host:8800. When set, "
        "tracking is sent there and /cellops/api/v1 is forwarded to it (env CELLOPS_BACKEND_URL).",
    )

    token = Unicode(
        config=True,
        help="Personal token for the team backend, from `cellops users add` (env CELLOPS_TOKEN).",
    )

    max_output_text = Int(
        10_000, config=True, help="Characters of text kept per output; the rest is cut."
    )

    max_output_blob = Int(
        10 * 1024 * 1024,
        config=True,
        help="Largest binary output (e.g. an image) kept, in bytes; larger ones are noted only.",
    )

    max_artifact_size = Int(
        2 * 1024**3,
        config=True,
        help="Largest model artifact accepted by PUT /artifacts, in bytes (default 2 GiB).",
    )

    autolog = Bool(
        False,
        config=True,
        help="scikit-learn autologging in every kernel this server starts: they get "
        "CELLOPS_AUTOLOG=1, so `import cellops` is enough (no cellops.autolog() call).",
    )

    writer_batch_size = Int(1000, config=True, help="Records written to the store per batch.")

    writer_interval = Float(
        0.2,
        config=True,
        help="How often (seconds) the writer process looks for new records in the spool; "
        "bursts arriving meanwhile are written in one transaction.",
    )

    serving_port = Int(
        8900,
        config=True,
        help="Port of the serving listener (deployments' endpoints, on 127.0.0.1), started "
        "when the first deployment exists (env CELLOPS_SERVING_PORT).",
    )

    serving_workers = Int(
        2, config=True, help="Inference worker processes behind the serving listener."
    )

    # Monitoring of served requests: samples for drift, metrics (serving/router.py).
    serving_monitoring = Bool(
        True,
        config=True,
        help="Count served requests (Prometheus /metrics, per-minute metrics) and sample them "
        "for drift. False turns all of it off (the router's --no-monitoring).",
    )
    serving_sample_rate = Float(
        1.0,
        config=True,
        help="Fraction (0-1) of served requests whose input rows and predictions are kept as "
        "samples for drift (up to serving_samples_per_second); 0 keeps none.",
    )
    serving_samples_per_second = Int(
        10,
        config=True,
        help="Most requests sampled per deployment per second, so heavy traffic costs a "
        "bounded amount (each sample holds up to 100 rows of its request).",
    )
    drift_check_interval = Float(
        60.0,
        config=True,
        help="Seconds between drift checks of every deployment's samples; a change of verdict "
        "is recorded in its events and the activity feed.",
    )
    drift_window = Int(
        60, config=True, help="Minutes of sampled requests each background drift check judges."
    )

    @validate("serving_sample_rate")
    def _check_sample_rate(self, proposal: dict[str, float]) -> float:
        if not 0.0 <= proposal["value"] <= 1.0:
            raise TraitError(
                f"serving_sample_rate is a fraction from 0 to 1, not {proposal['value']}"
            )
        return proposal["value"]

    @validate("drift_check_interval")
    def _check_interval(self, proposal: dict[str, float]) -> float:
        if proposal["value"] <= 0:
            raise TraitError("drift_check_interval must be more than 0 seconds")
        return proposal["value"]

    @validate("drift_window")
    def _check_window(self, proposal: dict[str, int]) -> int:
        if not 1 <= proposal["value"] <= 1440:
            raise TraitError("drift_window is from 1 to 1440 minutes")
        return proposal["value"]

    # Webhooks (webhooks/): where deliveries may go, how often they are tried.
    webhook_allow_private_targets = Bool(
        False,
        config=True,
        help="Deliver webhooks to loopback, private, link-local and CGNAT addresses too (a "
        "receiver inside your network). Cloud metadata addresses are refused regardless.",
    )
    webhook_max_attempts = Int(
        5, config=True, help="Attempts at a webhook delivery (retries included) before it fails."
    )
    webhook_timeout = Float(
        10.0, config=True, help="Seconds one webhook delivery attempt may take, in all."
    )
    webhook_backoff = Float(
        1.0,
        config=True,
        help="Seconds before a failed webhook delivery is retried, doubled for each next retry.",
    )

    @validate("webhook_max_attempts")
    def _check_max_attempts(self, proposal: dict[str, int]) -> int:
        if not 1 <= proposal["value"] <= 100:
            raise TraitError("webhook_max_attempts is from 1 to 100")
        return proposal["value"]

    @validate("webhook_timeout", "webhook_backoff")
    def _check_webhook_seconds(self, proposal: dict[str, float]) -> float:
        value = proposal["value"]
        if not 0 < value <= 3600:
            name = proposal["trait"].name  # type: ignore[attr-defined]
            raise TraitError(f"{name} must be more than 0 and at most 3600 seconds")
        return value

    # Drift of served requests against the training data (monitoring/drift.py).
    drift_psi_threshold = Float(
        0.2, config=True, help="PSI over which a feature's distribution has shifted materially."
    )
    drift_ks_pvalue = Float(
        0.01, config=True, help="KS p-value under which a numeric feature differs significantly."
    )
    drift_wasserstein_threshold = Float(
        0.2,
        config=True,
        help="Wasserstein distance, in reference standard deviations, over which a numeric "
        "feature has shifted materially.",
    )
    drift_chi2_pvalue = Float(
        0.01, config=True, help="Chi-squared p-value under which a categorical feature differs."
    )
    drift_min_samples = Int(
        50, config=True, help="Sampled requests needed in the window before drift is judged."
    )

    @default("serving_port")
    def _serving_port_default(self) -> int:
        return int(os.environ.get("CELLOPS_SERVING_PORT") or 8900)

    @default("home")
    def _home_default(self) -> str:
        return str(default_home())

    @default("db_url")
    def _db_url_default(self) -> str:
        return default_db_url(Path(self.home))

    @default("artifacts_dir")
    def _artifacts_default(self) -> str:
        return str(Path(self.home) / "artifacts")

    @default("backend_url")
    def _backend_url_default(self) -> str:
        return os.environ.get("CELLOPS_BACKEND_URL", "")

    @default("token")
    def _token_default(self) -> str:
        return os.environ.get("CELLOPS_TOKEN", "")


def configured(command: str) -> CellopsConfig:
    """The settings a Jupyter server started here would use, for a command run without one
    (`cellops run`, `cellops promote`): ``CellopsConfig`` from the Jupyter config files
    (jupyter_server_config.json/.py), then the environment."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

    config = Config()
    for folder in reversed(jupyter_config_path()):  # the first folder has the last word
        for loader in (JSONFileConfigLoader, PyFileConfigLoader):
            suffix = "json" if loader is JSONFileConfigLoader else "py"
            try:
                config.merge(loader(f"jupyter_server_config.{suffix}", folder).load_config())
            except ConfigFileNotFound:
                continue
            except Exception as exc:  # a broken file: Jupyter would refuse it; say so
                print(
                    f"{command}: ignored {folder}/jupyter_server_config.{suffix}: {exc}",
                    file=sys.stderr,
                )
    return CellopsConfig(config=config)
