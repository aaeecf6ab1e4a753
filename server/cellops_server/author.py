"""Who a request on this Jupyter server is: one stable name per server.

jupyter_server's own identity providers authenticate a token or password, not a person:
each request without a login cookie gets a new random "Anonymous …" user. Recording that
id would give every run and model version a different author. So the Jupyter user's name
is used only when it names someone (JupyterHub, a configured identity provider); otherwise
it is the OS user running the server.
"""

from __future__ import annotations

import getpass
import re
from functools import cache
from typing import Any

from jupyter_server.auth.identity import (
    IdentityProvider,
    LegacyIdentityProvider,
    PasswordIdentityProvider,
)

# These only ever make anonymous users (a shared token or password identifies nobody).
STOCK_PROVIDERS = (IdentityProvider, PasswordIdentityProvider, LegacyIdentityProvider)
ANONYMOUS_ID = re.compile(r"^[0-9a-f]{32}$")  # generate_anonymous_user: uuid4().hex


@cache
def os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no USER/LOGNAME and no passwd entry (some containers)
        return None


def is_anonymous(user: Any, provider: Any) -> bool:
    if type(provider) in STOCK_PROVIDERS:
        return True
    # A custom provider may still fall back to jupyter_server's random anonymous user.
    name = str(getattr(user, "name", "") or "")
    return bool(ANONYMOUS_ID.match(str(user.username))) and name.startswith("Anonymous ")


def server_user(handler: Any) -> str | None:
    """The stable name of whoever ``handler`` (a Jupyter handler) serves."""
    user = getattr(handler, "current_user", None)
    if isinstance(user, str):
        return user
    if user is None or not getattr(user, "username", None):
        return os_user()
    provider = handler.settings.get("identity_provider")
    return os_user() if is_anonymous(user, provider) else str(user.username)
