"""`cellops promote MODEL VERSION --alias ALIAS [--dry-run]`: a pipeline's promotion gate.

It asks the same server-side policy as the sidebar's alias move, prints each rule with
PASS or FAIL, what it needs and what the version has, and exits with a code a CI job can
branch on:

- 0: moved (or a dry run that would move);
- 4: refused by the model's policy (or a dry run that would be refused);
- 2: a usage error (bad arguments, an invalid alias name, CELLOPS_BACKEND_URL without
  CELLOPS_TOKEN);
- 3: the promotion could not be attempted: the backend or store is unreachable, there is no
  such model or version (the message says which), the version is archived, or the token is
  refused.

With ``CELLOPS_BACKEND_URL`` (and ``CELLOPS_TOKEN``) it posts to the team backend's
``/models/{name}/promotions``; otherwise it opens the embedded store a Jupyter server of
this user would use (CellopsConfig's defaults: ``CELLOPS_HOME``, ``CELLOPS_DB_URL``) and calls
the same domain function, as the local user (the admin of their own store, as in JupyterLab).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

OK, USAGE, UNAVAILABLE, REFUSED = 0, 2, 3, 4
TIMEOUT = 60.0  # seconds for the backend's answer (a move waits on the model's lock)


@dataclass
class Outcome:
    """What the promotion answered: a result body, or a refusal's detail and message."""

    code: int
    rules: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    result: dict[str, Any] | None = None


class Failed(Exception):
    """The promotion was not attempted: ``code`` is the exit code, the message says why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "promote",
        help="move a model's alias to a version through the model's promotion policy",
        description="Move ALIAS of MODEL to VERSION if the model's promotion policy allows "
        "it, printing every rule with PASS or FAIL. Talks to the team backend when "
        "CELLOPS_BACKEND_URL and CELLOPS_TOKEN are set, else to the embedded store. Exit "
        "codes: 0 moved (or a dry run that would move), 4 refused by the policy, 2 usage "
        "error, 3 backend unreachable or no such model or version.",
    )
    p.add_argument("model", help="the registered model's name")
    p.add_argument("version", type=_version, help="the version number to promote")
    p.add_argument("--alias", required=True, help="the alias to move, e.g. production")
    p.add_argument("--dry-run", action="store_true", help="only evaluate the rules; move nothing")


def _version(text: str) -> int:
    raw = text.strip().removeprefix("v")
    if not raw.isdigit() or not 0 < int(raw) <= 999_999_999:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r} (e.g. 3)")
    return int(raw)


def run(args: argparse.Namespace) -> int:
    from .config import configured

    cfg = configured("cellops promote")
    try:
        if cfg.backend_url:
            outcome = _over_http(cfg.backend_url, cfg.token, args)
        else:
            outcome = _embedded(cfg, args)
    except Failed as exc:
        print(f"cellops promote: {exc}", file=sys.stderr)
        return exc.code
    _print(args, outcome)
    return outcome.code


# -- the team backend --------------------------------------------------------------------------


def _over_http(url: str, token: str, args: argparse.Namespace) -> Outcome:
    if not token:
        raise Failed(USAGE, "CELLOPS_BACKEND_URL is set but CELLOPS_TOKEN is not")
    base = url.rstrip("/")
    path = f"/cellops/api/v1/models/{quote(args.model, safe='')}/promotions"
    body = {"version": args.version, "alias": args.alias, "dry_run": args.dry_run}
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"token {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            return _answered(json.loads(answer.read()))
    except urllib.error.HTTPError as exc:
        return _refused(exc.code, _error_body(exc), base)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Failed(UNAVAILABLE, f"cannot reach the team backend at {base}: {reason}") from None


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        body = json.loads(exc.read())
    except (ValueError, OSError):
        return {"error": f"HTTP {exc.code} {exc.reason}", "detail": None}
    return body if isinstance(body, dict) else {"error": str(body), "detail": None}


def _refused(status: int, body: dict[str, Any], base: str) -> Outcome:
    message = str(body.get("error") or f"HTTP {status}")
    detail = body.get("detail")
    if status == 409 and isinstance(detail, dict) and isinstance(detail.get("rules"), list):
        return Outcome(REFUSED, rules=detail["rules"], message=message)
    if status == 404:
        raise Failed(UNAVAILABLE, f"not found: {message}")
    if status in (401, 403):
        raise Failed(UNAVAILABLE, f"the team backend at {base} refused: {message}")
    if status == 400:
        raise Failed(USAGE, message + (f" ({json.dumps(detail)})" if detail else ""))
    raise Failed(UNAVAILABLE, f"the team backend answered {status}: {message}")


def _answered(result: dict[str, Any]) -> Outcome:
    allowed = bool(result.get("allowed", True))
    code = OK if result.get("moved") or allowed else REFUSED
    return Outcome(code, rules=list(result.get("rules") or []), result=result)


# -- the embedded store ------------------------------------------------------------------------


def _embedded(cfg: Any, args: argparse.Namespace) -> Outcome:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from .author import os_user
    from .registry.store import InUse
    from .review.policy import DeployRefused, PromotionRefused
    from .review.promotions import promote
    from .store import NotFound, Store, StoreConfigError
    from .team.users import TeamUser

    url = make_url(cfg.db_url)
    if url.get_backend_name() == "sqlite" and url.database and not _exists(url.database):
        raise Failed(
            UNAVAILABLE,
            f"no embedded cellops store at {url.database} (nothing registered on this machine "
            "yet); set CELLOPS_BACKEND_URL and CELLOPS_TOKEN to promote on a team backend",
        )
    try:
        store = Store(cfg.db_url, cfg.artifacts_dir)
    except StoreConfigError as exc:
        raise Failed(USAGE, str(exc)) from None
    except SQLAlchemyError as exc:
        raise Failed(UNAVAILABLE, f"cannot open the store: {type(exc).__name__}: {exc}") from None
    caller = TeamUser(os_user() or "", "admin")
    try:
        result = promote(store, args.model, args.version, args.alias, caller, args.dry_run)
    except PromotionRefused as exc:
        rules = [r.model_dump(mode="json") for r in exc.rules]
        return Outcome(REFUSED, rules=rules, message=str(exc))
    except DeployRefused as exc:  # deployments follow the alias (the deploy rule)
        rules = [{**f.model_dump(mode="json"), "passed": False} for f in exc.failed]
        return Outcome(REFUSED, rules=rules, message=str(exc))
    except NotFound as exc:
        raise Failed(UNAVAILABLE, f"not found: {exc.args[0] if exc.args else exc}") from None
    except InUse as exc:
        raise Failed(UNAVAILABLE, str(exc)) from None
    except ValueError as exc:
        raise Failed(USAGE, str(exc)) from None
    except SQLAlchemyError as exc:
        raise Failed(UNAVAILABLE, f"the store failed: {type(exc).__name__}: {exc}") from None
    finally:
        store.close()
    return _answered(result.model_dump(mode="json"))


def _exists(path: str) -> bool:
    from pathlib import Path

    return path == ":memory:" or Path(path).exists()


# -- what is printed ---------------------------------------------------------------------------


def _print(args: argparse.Namespace, outcome: Outcome) -> None:
    what = f"{args.model} version {args.version} → {args.alias}"
    print(f"promote {what}" + (" (dry run)" if args.dry_run else ""))
    for rule in outcome.rules:
        print(_rule_line(rule))
    result = outcome.result or {}
    if outcome.result is not None and not result.get("protected", True):
        print(f"  (the alias {args.alias!r} is not protected by the model's policy: no rules)")
    if outcome.code == REFUSED and outcome.message:
        print(f"REFUSED: {outcome.message}")
    elif outcome.code == REFUSED:
        print(f"REFUSED (dry run): version {args.version} may not take {args.alias!r} now")
    elif args.dry_run:
        print(f"ALLOWED (dry run): version {args.version} may take {args.alias!r}; nothing moved")
    else:
        previous = result.get("previous")
        was = f" (was version {previous})" if previous is not None else ""
        same = previous == args.version
        print(
            f"MOVED: {args.alias!r} already points at version {args.version}"
            if same
            else f"MOVED: {args.alias!r} now points at version {args.version}{was}"
        )


def _rule_line(rule: dict[str, Any]) -> str:
    mark = "PASS" if rule.get("passed") else "FAIL"
    need, have = _text(rule.get("need")), _text(rule.get("have"))
    return (
        f"  {mark}  {rule.get('rule')}: {rule.get('message', '')}\n"
        f"        need: {need}\n        have: {have}"
    )


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
