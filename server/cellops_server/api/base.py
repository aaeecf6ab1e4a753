"""The one base handler: authentication hooks, JSON in and out, errors, pagination.

Resource handlers are written once, as mixins over ``ApiHandler``; ``routes.py``
binds them to the Jupyter server's handler (identity and authorizer of Jupyter)
or to the team backend's (personal tokens and roles).

Bad input never costs the server more than it costs the client: every request body is
streamed in and refused past its endpoint's ``max_body`` (from Content-Length before any
of it is read, else as soon as it outgrows the limit), a large body is parsed and
validated on a worker thread, and an error repeats only a bounded part of the input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from tornado import web
from tornado.ioloop import IOLoop

from ..bounds import MAX_INT
from ..store import InvalidCursor, NotebookRef, NotFound, Store
from ..store import errors as store_errors
from ..team.users import TeamUser
from .streaming import StreamingHandler, announced_length

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")

DEFAULT_MAX_BODY = 1024 * 1024  # JSON bodies of most endpoints are a few KiB
BODY_SLACK = 1024 * 1024  # tornado's own limit sits above ours, so the client gets our 413
PARSE_ON_LOOP = 64 * 1024  # larger bodies are parsed and validated on a worker thread
MAX_ERRORS = 20  # validation errors listed in an error's detail
MAX_TEXT = 500  # characters of a message (or of a key in an error's location) repeated


class ApiError(web.HTTPError):
    """An error the client can fix; rendered as ``{"error": message, "detail": detail}``."""

    def __init__(
        self, status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, log_message=message)
        self.message = message
        self.detail = detail
        self.headers = headers or {}  # set on the answer (an error clears earlier headers)


@web.stream_request_body
class ApiHandler(StreamingHandler):
    """Shared behaviour of every cellops endpoint (mixed into a mode-specific base)."""

    auth_resource = "cellops"
    # The largest request body the endpoint takes, in bytes; None when the handler streams
    # its body itself (artifacts, the team-client forwarder) with limits of its own.
    max_body: int | None = DEFAULT_MAX_BODY
    _body: bytes | bytearray = b""

    @property
    def store(self) -> Store:
        store = self.settings.get("cellops_store")
        if store is None:
            raise ApiError(503, "the cellops store is not available on this server")
        return store

    def identity(self) -> str | None:
        """The name recorded as the author of what this request writes."""
        user: Any = self.current_user
        return getattr(user, "username", None) or (user if isinstance(user, str) else None)

    def caller(self) -> TeamUser:
        """Who is asking, with their role: a team member, or in embedded mode the Jupyter
        user, who is the admin of their own store (Jupyter authorized the request)."""
        team_user: TeamUser | None = getattr(self, "team_user", None)
        if team_user is not None:
            return team_user
        return TeamUser(self.identity() or "", "admin")

    # -- responses -------------------------------------------------------------------------

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if isinstance(body, BaseModel):
            self.finish(body.model_dump_json())
        else:
            self.finish(json.dumps(body, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        detail = None
        if isinstance(exc, ApiError):
            message, detail = exc.message, exc.detail
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif status_code == 405:
            allowed = self.allowed_methods()
            self.set_header("Allow", ", ".join(allowed))
            message = f"{self.request.method} is not allowed here; use {' or '.join(allowed)}"
        elif isinstance(exc, web.HTTPError):
            message = exc.log_message or self._reason
            if exc.args and "%" in str(message):
                message = str(message) % exc.args
        else:
            message = self._reason if status_code < 500 else "internal error; see the server log"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"error": capped(str(message)), "detail": detail}))

    def finish(self, chunk: Any = None) -> Any:
        if not self._headers_written and not self._body_read():
            # Tornado closes a connection whose request it answers before reading all of it
            # (a refusal): say so, so the client does not send its next request on it.
            self.set_header("Connection", "close")
        return super().finish(chunk)

    def allowed_methods(self) -> list[str]:
        """The HTTP methods this endpoint answers (the ``Allow`` header of a 405)."""
        base = web.RequestHandler
        return [
            m
            for m in self.SUPPORTED_METHODS
            if getattr(type(self), m.lower()) is not getattr(base, m.lower())
        ]

    # -- requests ----------------------------------------------------------------------------

    async def accept_body(self) -> None:
        """Refuse a body announced larger than ``max_body`` before reading any of it."""
        limit = self.max_body
        if limit is None:
            return
        length = announced_length(self.request.headers)
        if length is not None and length > limit:
            raise self.too_large(limit)
        self.request.connection.set_max_body_size(limit + BODY_SLACK)  # type: ignore[attr-defined]
        self._body = bytearray()

    def receive(self, chunk: bytes) -> None:
        limit = self.max_body
        # A handler with max_body None streams its body itself: it overrides receive.
        assert limit is not None and isinstance(self._body, bytearray), type(self).__name__
        if len(self._body) + len(chunk) > limit:  # a chunked body without Content-Length
            self._body = b""
            self.refuse_now(self.too_large(limit))
            return
        self._body += chunk

    def too_large(self, limit: int) -> ApiError:
        return ApiError(
            413,
            f"request body too large: this endpoint takes at most {limit} bytes",
            {"limit": limit},
        )

    def _body_read(self) -> bool:
        """Whether tornado has read the request to its end (tornado sets this future)."""
        done = getattr(self.request, "_body_future", None)
        return done is None or done.done()

    async def body_as(self, model: type[M]) -> M:
        """The request body validated as ``model`` (a 400 saying what to fix otherwise).

        pydantic parses the JSON itself: it refuses nesting deeper than a few hundred
        levels (json.loads would raise RecursionError, a 500), lone surrogates and numbers
        past any column. A large body is parsed on a worker thread, so the server keeps
        answering other requests meanwhile."""
        body = self._body or b"{}"
        try:
            if len(body) <= PARSE_ON_LOOP:
                return model.model_validate_json(body)
            return await IOLoop.current().run_in_executor(None, model.model_validate_json, body)
        except ValidationError as exc:
            raise invalid_body(model, exc) from None

    def id_arg(self, value: str, what: str = "id", maximum: int = MAX_INT) -> int:
        """A numeric id from the URL. Routes match any segment, so that ``runs/abc`` is told
        the id must be an integer instead of getting a 404."""
        if not value.isascii() or not value.isdigit():
            raise ApiError(400, f"{what} must be an integer; got {capped(value, 30)!r}")
        # Checked by length first: int() refuses strings of over 4,300 digits (a 500).
        if len(value) > len(str(maximum)) or int(value) > maximum:
            raise ApiError(400, f"{what} {capped(value, 30)} is out of range: at most {maximum}")
        return int(value)

    def query_limit(self, default: int = 50, maximum: int = 500) -> int:
        limit = self.query_int("limit", default, 1, maximum)
        assert limit is not None  # it has a default
        return limit

    def query_int(self, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be an integer, not {capped(raw, 30)!r}") from None
        if not minimum <= value <= maximum:
            raise ApiError(400, f"{name} must be between {minimum} and {maximum}")
        return value

    async def notebook_ref(self, *, required: bool = True) -> NotebookRef | None:
        """Which notebook ``?notebook=path`` means for this caller (store.notebook_id).

        A member's Jupyter server knows its own file: it sends ``own=1`` when the file is on
        its disk and ``repo``/``repo_path`` when it is in a git repository (team/forward.py);
        an embedded server looks its file up itself."""
        path = (
            self.required_query("notebook")
            if required
            else self.get_query_argument("notebook", None)
        )
        if not path:
            return None
        team_user = getattr(self, "team_user", None)
        ref = NotebookRef(
            path,
            caller=team_user.name if team_user is not None else None,
            owner=self.get_query_argument("owner", None) or None,
            repo=self.get_query_argument("repo", None) or None,
            repo_path=self.get_query_argument("repo_path", None) or None,
            own=self.get_query_argument("own", "") in ("1", "true"),
        )
        local = self.settings.get("cellops_local_notebooks")
        if local is not None and ref.repo is None and ref.owner is None:
            found = await local.look_up(path)
            repo = found.repo or {}
            ref = NotebookRef(
                path, ref.caller, None, repo.get("repo"), repo.get("repo_path"), found.exists
            )
        return ref

    def required_query(self, name: str) -> str:
        value = self.get_query_argument(name, None)
        if not value:
            raise ApiError(400, f"the query parameter {name!r} is required")
        return value

    async def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run a blocking store call off the event loop; map domain errors to 4xx, and store
        errors to 400/409 when the request's data is at fault, 503 only when unreachable."""
        try:
            return await IOLoop.current().run_in_executor(None, lambda: fn(*args, **kwargs))
        except SQLAlchemyError as exc:
            if store_errors.is_unreachable(exc):
                raise ApiError(
                    503, f"the cellops store is unavailable: {type(exc).__name__}"
                ) from None
            if store_errors.is_conflict(exc):
                raise ApiError(
                    409, "the request conflicts with stored data", store_errors.describe(exc)
                ) from None
            if store_errors.is_bad_data(exc):
                raise ApiError(
                    400, "the store cannot hold a value of the request", store_errors.describe(exc)
                ) from None
            raise
        except store_errors.NotOwner as exc:
            raise ApiError(403, str(exc)) from None
        except NotFound as exc:
            raise ApiError(404, str(exc.args[0] if exc.args else exc)) from None
        except InvalidCursor as exc:
            raise ApiError(400, str(exc)) from None
        except ValueError as exc:  # the domain's "fix this input", and values a driver refuses
            raise ApiError(400, str(exc), getattr(exc, "detail", None)) from None


def capped(text: str, limit: int = MAX_TEXT) -> str:
    """``text``, cut to ``limit`` characters: an error never repeats a whole input."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def invalid_body(model: type[BaseModel], exc: ValidationError) -> ApiError:
    """A 400 for a body pydantic refused, listing a bounded number of its errors, each
    without the input it refused (a 60 MB body was once repeated four times over)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return ApiError(400, f"request body is not valid JSON: {capped(errors[0]['msg'])}")
    detail: list[dict[str, Any]] = [
        {
            "loc": [capped(part, 100) if isinstance(part, str) else part for part in e["loc"]],
            "msg": capped(e["msg"]),
            "type": e["type"],
        }
        for e in errors[:MAX_ERRORS]
    ]
    if len(errors) > MAX_ERRORS:
        more = len(errors) - MAX_ERRORS
        detail.append({"loc": [], "msg": f"and {more} more errors", "type": "too_many_errors"})
    return ApiError(400, f"invalid {model.__name__}", detail)
