"""The HTTP client of the cellops API and how a kernel finds its server.

Standard library only; ``urllib.request`` is imported on first request so that
``import cellops`` stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import Any
from urllib.parse import quote, urlsplit

API_PREFIX = "cellops/api/v1/"
# "Backend down, kept for later" goes here, never into a cell's output (which the notebook
# saves); the status bar shows the backlog instead (report_backlog). Without a handler the
# library stays quiet rather than falling back to printing on stderr.
log = logging.getLogger("cellops")
log.addHandler(logging.NullHandler())
_CONFIG_HINT = (
    "set CELLOPS_URL (e.g. http://localhost:8888/) and CELLOPS_TOKEN (your Jupyter or team token)"
)


class CellopsError(Exception):
    """Base class of every error cellops raises on purpose."""


class CellopsConfigError(CellopsError):
    """No cellops server could be found from the environment."""


class RegistryError(CellopsError):
    """The server refused a request or could not be reached; ``str()`` is its explanation."""

    def __init__(self, message: str, status: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class ServerUnreachable(RegistryError):
    """No HTTP answer at all (connection refused, timeout, DNS)."""


class PermissionDenied(RegistryError, PermissionError):
    """A 403: the token is good, but its user's role (or ownership) does not allow this."""


class PromotionRefused(RegistryError):
    """A 409 from a protected alias, or from the model's deploy rule (``detail["refused"]``
    is "deploy"): ``failed`` lists each rule the version does not pass (``rule``, ``need``,
    ``have``, ``message``); ``str()`` says them all."""

    def __init__(self, message: str, status: int | None = None, detail: Any = None) -> None:
        self.failed: list[dict[str, Any]] = [
            f for f in (detail or {}).get("failed") or [] if isinstance(f, dict)
        ]
        lines = [message, *(f"  - {_rule_text(f)}" for f in self.failed)]
        # A deployment refused by the model's deploy rule has no override (detail.refused).
        if not (isinstance(detail, dict) and detail.get("refused") == "deploy"):
            lines.append('  (an admin may move it anyway, with a reason: override="why")')
        super().__init__("\n".join(lines), status, detail)


def _rule_text(failed: dict[str, Any]) -> str:
    text = str(failed.get("message") or failed.get("rule") or "a rule failed")
    return (
        f"{text} [{failed.get('rule')}: need {failed.get('need')!r}, have {failed.get('have')!r}]"
    )


def _refusal(code: int, message: str, detail: Any, source: str) -> RegistryError:
    """The exception for an HTTP error answer, its message written for a data scientist."""
    if code == 401:
        return RegistryError(
            f"{message} (check the token; the client was configured {source})", 401, detail
        )
    if code == 403:  # the token is good; its user's role does not allow this
        return PermissionDenied(
            f"{message} (your role on this server does not allow it; ask an administrator)",
            403,
            detail,
        )
    if code == 409 and isinstance(detail, dict) and isinstance(detail.get("failed"), list):
        return PromotionRefused(message, 409, detail)
    return RegistryError(message, code, detail)


def segment(value: str) -> str:
    # Names are validated before they get here; quoting keeps a path segment a segment anyway.
    return quote(str(value), safe="")


class Client:
    """A thin JSON-over-HTTP client of ``<url>/cellops/api/v1/``."""

    def __init__(self, url: str, token: str | None, source: str) -> None:
        if not url.endswith("/"):
            url += "/"
        self.url = url
        self.token = token
        self.source = source  # which environment variables it came from, for messages
        self._opener: Any = None

    def __repr__(self) -> str:
        return f"<cellops.Client {self.url} (configured {self.source})>"

    def _open(self, request: Any, timeout: float) -> Any:
        if self._opener is None:
            import urllib.request

            host = urlsplit(self.url).hostname or ""
            # A proxy configured for the internet must not capture the local Jupyter server.
            local = host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
            handlers = [urllib.request.ProxyHandler({})] if local else []
            self._opener = urllib.request.build_opener(*handlers)
        return self._opener.open(request, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        timeout: float = 30.0,
        headers: dict[str, str] | None = None,
        prefix: str = API_PREFIX,
    ) -> tuple[int, bytes]:
        """Send one request; answers (status, body) for 2xx and raises RegistryError otherwise.
        ``prefix=""`` addresses the Jupyter server's own API (``api/sessions``)."""
        import urllib.error
        import urllib.request

        headers = {"Accept": "application/json", **(headers or {})}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        if json_body is not None:
            data = json.dumps(json_body, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        elif data is not None:
            headers["Content-Type"] = "application/octet-stream"
        req = urllib.request.Request(
            self.url + prefix + path.lstrip("/"), data=data, headers=headers, method=method
        )
        try:
            with self._open(req, timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            body = err.read()
            message, detail = f"HTTP {err.code} {err.reason}", None
            try:
                parsed = json.loads(body)
                message, detail = str(parsed.get("error") or message), parsed.get("detail")
            except (ValueError, AttributeError):
                pass
            raise _refusal(err.code, message, detail, self.source) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ServerUnreachable(
                f"cannot reach the cellops server at {self.url}: {reason}"
            ) from None

    def get_json(self, path: str) -> Any:
        return json.loads(self.request("GET", path)[1])

    def send_json(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> Any:
        _status, raw = self.request(method, path, json_body=body, headers=headers)
        return json.loads(raw) if raw else None


def discover(environ: Any = None) -> Client:
    """Find the server: explicit CELLOPS_URL/TOKEN win, else what the Jupyter server set."""
    env = os.environ if environ is None else environ
    if env.get("CELLOPS_URL"):
        return Client(env["CELLOPS_URL"], env.get("CELLOPS_TOKEN"), "by CELLOPS_URL/CELLOPS_TOKEN")
    if env.get("CELLOPS_SERVER_URL"):
        return Client(
            env["CELLOPS_SERVER_URL"],
            env.get("CELLOPS_SERVER_TOKEN"),
            "by the Jupyter server that started this kernel",
        )
    raise CellopsConfigError(f"cellops does not know which server to talk to: {_CONFIG_HINT}.")


def kernel_name() -> str:
    """This kernel's id (from its connection file), else its process id."""
    connect = sys.modules.get("ipykernel.connect")
    try:
        name = os.path.basename(connect.get_connection_file()) if connect else ""
    except Exception:  # not a running ipykernel
        name = ""
    if name.startswith("kernel-") and name.endswith(".json"):
        return name[len("kernel-") : -len(".json")]
    return f"pid-{os.getpid()}"


def report_backlog(pending: int, error: str | None) -> None:
    """Tell the server how many records this kernel keeps for later (0: none), so its status
    bar can say so. Best effort: the server may be the one that is down."""
    body = {"kernel": kernel_name(), "pending": pending, "error": error and error[:2000]}
    try:
        client().request("POST", "status/kernels", json_body=body, timeout=5.0)
    except CellopsError as err:
        log.debug("cellops: could not report the backlog: %s", err)


_lock = threading.Lock()
_client: Client | None = None


def client() -> Client:
    """The process-wide client (found from the environment on first use)."""
    global _client
    with _lock:
        if _client is None:
            _client = discover()
        return _client


def reset_client() -> None:
    """Forget the cached client (after changing CELLOPS_URL in a running kernel)."""
    global _client
    with _lock:
        _client = None


__all__ = [
    "CellopsConfigError",
    "CellopsError",
    "Client",
    "PermissionDenied",
    "PromotionRefused",
    "RegistryError",
    "ServerUnreachable",
    "client",
    "discover",
    "report_backlog",
    "reset_client",
    "segment",
]
