"""The base for handlers mounted inside a Jupyter server: Jupyter's identity,
authorizer, token and XSRF checks (via APIHandler), plus cellops' ApiHandler."""

from __future__ import annotations

from jupyter_server.base.handlers import APIHandler

from .base import ApiHandler


class JupyterApiHandler(ApiHandler, APIHandler):
    pass
