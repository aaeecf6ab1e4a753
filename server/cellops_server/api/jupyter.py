"""The base for handlers mounted inside a Jupyter server: Jupyter's identity,
authorizer, token and XSRF checks (via APIHandler), plus cellops' ApiHandler."""

from __future__ import annotations

from jupyter_server.base.handlers import APIHandler

from ..identity import server_user
from .base import ApiHandler


class JupyterApiHandler(ApiHandler, APIHandler):
    def identity(self) -> str | None:
        # Not Jupyter's per-request anonymous id: one name per server (identity.py).
        return server_user(self)
