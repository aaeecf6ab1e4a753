"""The `cellops` command: serve the team backend, manage users, migrate the store."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
from typing import Any

from . import __version__, promote_cli
from .config import default_db_url, default_home
from .headless.command import add_run_parser, run_command
from .private import private_dir


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy URL (default: $CELLOPS_DB_URL, else the embedded SQLite)",
    )


def _db(args: argparse.Namespace) -> str:
    return args.db or default_db_url()


def _artifacts(args: argparse.Namespace) -> str:
    return (
        args.artifacts or os.environ.get("CELLOPS_ARTIFACTS") or str(default_home() / "artifacts")
    )


def _size(text: str) -> int:
    """Bytes, or a number with a K, M or G suffix (powers of 1024)."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    raw = text.strip().upper().removesuffix("B")
    factor = units.get(raw[-1:], 1)
    digits = raw[:-1] if raw[-1:] in units else raw
    if not digits.isdigit() or int(digits) * factor < 1:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G, 1048576)")
    return int(digits) * factor


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"not a fraction from 0 to 1: {text!r}")
    return value


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not (0 < value < math.inf):  # also refuses nan
            raise argparse.ArgumentTypeError(f"not a number above 0: {text!r}")
        return value

    return parse


def _drift_settings(args: argparse.Namespace) -> Any:
    from .monitoring.drift import Thresholds
    from .monitoring.watch import DriftSettings

    thresholds = Thresholds(
        psi=args.drift_psi_threshold,
        ks_pvalue=args.drift_ks_pvalue,
        wasserstein=args.drift_wasserstein_threshold,
        chi2_pvalue=args.drift_chi2_pvalue,
        min_samples=args.drift_min_samples,
    )
    return DriftSettings(args.drift_check_interval, args.drift_window, thresholds)


def _webhook_settings(args: argparse.Namespace) -> Any:
    from .webhooks.outbox import Settings

    return Settings(
        args.webhook_allow_private_targets,
        args.webhook_max_attempts,
        args.webhook_timeout,
        args.webhook_backoff,
    )


def _webhook_args(serve: argparse.ArgumentParser) -> None:
    g = serve.add_argument_group("webhooks", "where webhook deliveries may go, and retries")
    g.add_argument(
        "--webhook-allow-private-targets",
        action="store_true",
        help="deliver to loopback, private, link-local and CGNAT addresses too (cloud "
        "metadata addresses stay refused)",
    )
    g.add_argument(
        "--webhook-max-attempts",
        type=_bounded_int(1, 100),
        default=5,
        help="attempts at a delivery, retries included (1-100, default: 5)",
    )
    g.add_argument(
        "--webhook-timeout",
        type=_positive(float),
        default=10.0,
        help="seconds one attempt may take in all (default: 10)",
    )
    g.add_argument(
        "--webhook-backoff",
        type=_positive(float),
        default=1.0,
        help="seconds before the first retry, doubled for each next one (default: 1)",
    )


def _bounded_int(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"not a whole number from {low} to {high}: {text!r}")
        return value

    return parse


def _serve(args: argparse.Namespace) -> int:
    from .store import Store
    from .team.serve import serve, tls_context

    # Checked before anything is created: a bad certificate is a usage error.
    tls = tls_context(args.certfile, args.keyfile) if args.certfile else None
    private_dir(_artifacts(args))  # models are their owner's only (0700)
    store = Store(_db(args), _artifacts(args))
    serving = None
    if args.serving_port:
        from .serving.supervisor import ServingSupervisor, monitoring_env

        env = monitoring_env(not args.no_monitoring, args.sample_rate, args.samples_per_second)
        serving = ServingSupervisor(
            _db(args), _artifacts(args), args.host, args.serving_port, args.serving_workers, env
        )
    serving_url = args.serving_url or (serving.url if serving else "")
    asyncio.run(
        serve(
            store,
            args.host,
            args.port,
            args.max_artifact_size,
            tls,
            serving,
            serving_url,
            _drift_settings(args),
            _webhook_settings(args),
        )
    )
    return 0


def _monitoring_args(serve: argparse.ArgumentParser) -> None:
    g = serve.add_argument_group(
        "monitoring", "what the serving listener records of requests, and drift checks"
    )
    g.add_argument(
        "--no-monitoring",
        action="store_true",
        help="the serving listener counts nothing (no Prometheus /metrics series, per-minute "
        "metrics or samples for drift)",
    )
    g.add_argument(
        "--sample-rate",
        type=fraction,
        default=1.0,
        help="share of requests (0-1) whose input rows and predictions are kept for drift; "
        "0: none (default: 1)",
    )
    g.add_argument(
        "--samples-per-second",
        type=_positive(int),
        default=10,
        help="most requests sampled per deployment and second (default: 10)",
    )
    g.add_argument(
        "--drift-check-interval",
        type=_positive(float),
        default=60.0,
        help="seconds between drift checks of every deployment (default: 60)",
    )
    g.add_argument(
        "--drift-window",
        type=_positive(int),
        default=60,
        help="minutes of sampled requests a drift check judges (default: 60)",
    )
    g.add_argument(
        "--drift-psi-threshold",
        type=_positive(float),
        default=0.2,
        help="PSI over which a feature has shifted materially (default: 0.2)",
    )
    g.add_argument(
        "--drift-ks-pvalue",
        type=fraction,
        default=0.01,
        help="KS p-value under which a numeric feature differs significantly (default: 0.01)",
    )
    g.add_argument(
        "--drift-wasserstein-threshold",
        type=_positive(float),
        default=0.2,
        help="Wasserstein distance, in training standard deviations, over which a numeric "
        "feature has shifted materially (default: 0.2)",
    )
    g.add_argument(
        "--drift-chi2-pvalue",
        type=fraction,
        default=0.01,
        help="chi-squared p-value under which a categorical feature differs (default: 0.01)",
    )
    g.add_argument(
        "--drift-min-samples",
        type=_positive(int),
        default=50,
        help="sampled rows needed in the window before drift is judged (default: 50)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cellops", description="cellops: MLOps inside JupyterLab")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the team backend",
        description="Run the team backend. Members point their Jupyter servers at "
        "http(s)://HOST:PORT with a personal token (see `cellops users add`).",
    )
    _db_arg(serve)
    serve.add_argument(
        "--artifacts", help="artifact folder (default: $CELLOPS_ARTIFACTS, else <home>/artifacts)"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only); for a team on "
        "other machines use 0.0.0.0 (every interface) or one LAN address",
    )
    serve.add_argument("--port", type=int, default=8800, help="port (default: 8800)")
    serve.add_argument(
        "--max-artifact-size",
        type=_size,
        default=2 * 1024**3,
        help="largest model artifact accepted, in bytes or with K/M/G (default: 2G)",
    )
    serve.add_argument(
        "--certfile",
        help="PEM certificate (chain) to serve HTTPS with; needs --keyfile (default: plain "
        "HTTP; or put a TLS reverse proxy in front)",
    )
    serve.add_argument(
        "--keyfile", help="PEM private key of --certfile (default: none, plain HTTP)"
    )
    serve.add_argument(
        "--serving-port",
        type=int,
        default=0,
        help="port of the serving listener (deployments' endpoints) on --host; "
        "default: none (deployments are not served)",
    )
    serve.add_argument(
        "--serving-workers", type=int, default=2, help="inference worker processes (default: 2)"
    )
    serve.add_argument(
        "--serving-url",
        help="the serving listener's URL as clients reach it, shown in deployments "
        "(default: http://HOST:SERVING_PORT)",
    )
    _monitoring_args(serve)
    _webhook_args(serve)

    migrate = sub.add_parser("migrate", help="bring the store's schema up to date")
    _db_arg(migrate)

    users = sub.add_parser("users", help="team users and their personal tokens")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="create a user and print their token")
    add.add_argument("name")
    add.add_argument(
        "--role",
        default="editor",
        help="viewer, commenter, editor, approver or admin (default: editor)",
    )
    token = users_sub.add_parser(
        "token", help="issue a new token for a user (the old one stops working)"
    )
    token.add_argument("name")
    role = users_sub.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role")
    remove = users_sub.add_parser("remove", help="delete a user")
    remove.add_argument("name")
    users_sub.add_parser("list", help="list users and roles")
    for p in (add, token, role, remove, users_sub.choices["list"]):
        _db_arg(p)
    promote_cli.add_parser(sub)
    add_run_parser(sub)  # `cellops run`: headless/command.py
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "promote":
        return promote_cli.run(args)
    if args.command == "run":
        return run_command(args)
    if args.command == "serve" and bool(args.certfile) != bool(args.keyfile):
        parser.error("serve: --certfile and --keyfile go together (HTTPS needs both)")
    logging.basicConfig(level=logging.INFO, format="[cellops %(levelname)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from .store import StoreConfigError, create_engine, migrate
    from .team import users as team_users
    from .team.serve import TLSConfigError

    try:
        if args.command == "serve":
            return _serve(args)
        engine = create_engine(_db(args))
        migrate(engine)
        if args.command == "migrate":
            print(f"store at {engine.url.render_as_string(hide_password=True)} is up to date")
        elif args.users_command == "add":
            print(team_users.add_user(engine, args.name, args.role))
        elif args.users_command == "token":
            print(team_users.rotate_token(engine, args.name))
        elif args.users_command == "role":
            team_users.set_role(engine, args.name, args.role)
        elif args.users_command == "remove":
            team_users.remove_user(engine, args.name)
        elif args.users_command == "list":
            for user in team_users.list_users(engine):
                print(f"{user.name}\t{user.role}")
        return 0
    except (StoreConfigError, team_users.UserError, TLSConfigError) as exc:
        print(f"cellops: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
