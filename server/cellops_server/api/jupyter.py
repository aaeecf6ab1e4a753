"""The base for handlers mounted inside a Jupyter server: Jupyter's identity,
authorizer, token and XSRF checks (via APIHandler), plus cellops' ApiHandler."""

from __future__ import annotations

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..author import server_user
from .base import ApiError, ApiHandler

NO_CREDENTIALS = (
    "authentication required: send your Jupyter token (Authorization: token …) or log in"
)


class SignedOutIs401(APIHandler):
    """Jupyter refuses a request that carries no credentials with a 403 (its login redirect
    for APIs, ``web.authenticated`` on a POST, the XSRF check of a cookie-less POST). On
    cellops routes that is a 401: the client must authenticate, not ask for more rights.
    Jupyter's own routes keep their answers; a foreign Host (DNS rebinding) stays a 403."""

    async def prepare(self) -> None:  # type: ignore[override]
        try:
            await super().prepare()
        except web.HTTPError as error:
            if error.status_code == 403 and self._signed_out():
                raise self._unauthenticated() from None
            raise
        if self.current_user is None:  # allow_unauthenticated_access: still not on cellops
            raise self._unauthenticated()

    def _signed_out(self) -> bool:
        resolved = hasattr(self, "_jupyter_current_user")  # identity was looked up
        return resolved and self.current_user is None and self.check_host()

    def _unauthenticated(self) -> ApiError:
        return ApiError(401, NO_CREDENTIALS, headers={"WWW-Authenticate": 'token realm="jupyter"'})


class JupyterApiHandler(ApiHandler, SignedOutIs401):
    def identity(self) -> str | None:
        # Not Jupyter's per-request anonymous id: one name per server (identity.py).
        return server_user(self)
