"""An identity provider that names its user, as JupyterHub's does (loaded by a test server
with ``--ServerApp.identity_provider_class=tests.named_identity.NamedIdentityProvider``)."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User


class NamedIdentityProvider(IdentityProvider):
    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        user = await super().get_user(handler)  # the token still decides who gets in
        return None if user is None else User("dana", name="Dana", display_name="Dana")
