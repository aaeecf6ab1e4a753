"""The one base handler: authentication hooks, JSON in and out, errors, pagination.

Resource handlers are written once, as mixins over ``ApiHandler``; ``routes.py``
binds them to the Jupyter server's handler (identity and authorizer of Jupyter)
or to the team backend's (personal tokens and roles).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from tornado import web
from tornado.ioloop import IOLoop

from ..store import InvalidCursor, NotFound, Store

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


class ApiError(web.HTTPError):
    """An error the client can fix; rendered as ``{"error": message, "detail": detail}``."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(status, log_message=message)
        self.message = message
        self.detail = detail


class ApiHandler(web.RequestHandler):
    """Shared behaviour of every cellops endpoint (mixed into a mode-specific base)."""

    auth_resource = "cellops"

    @property
    def store(self) -> Store:
        store = self.settings.get("cellops_store")
        if store is None:
            raise ApiError(503, "the cellops store is not available on this server")
        return store

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
        elif isinstance(exc, web.HTTPError):
            message = exc.log_message or self._reason
            if exc.args and "%" in str(message):
                message = str(message) % exc.args
        else:
            message = self._reason if status_code < 500 else "internal error; see the server log"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"error": message, "detail": detail}))

    # -- requests ----------------------------------------------------------------------------

    def body_as(self, model: type[M]) -> M:
        try:
            raw = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from None
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise ApiError(400, f"invalid {model.__name__}", json.loads(exc.json())) from None

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
            raise ApiError(400, f"{name} must be an integer, not {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ApiError(400, f"{name} must be between {minimum} and {maximum}")
        return value

    def required_query(self, name: str) -> str:
        value = self.get_query_argument(name, None)
        if not value:
            raise ApiError(400, f"the query parameter {name!r} is required")
        return value

    async def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run a blocking store call off the event loop; map domain errors to 4xx."""
        try:
            return await IOLoop.current().run_in_executor(None, lambda: fn(*args, **kwargs))
        except SQLAlchemyError as exc:
            raise ApiError(503, f"the cellops store is unavailable: {type(exc).__name__}") from None
        except NotFound as exc:
            raise ApiError(404, str(exc.args[0] if exc.args else exc)) from None
        except InvalidCursor as exc:
            raise ApiError(400, str(exc)) from None
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
