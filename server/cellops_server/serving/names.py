"""The deployment name rule: a name is part of the serving listener's URLs
(``/v2/models/{name}``, ``/deployments/{name}/invocations``), so it is the model name rule
cut to 64 characters: nothing that could be a path separator, a dot-segment on its own, or
need escaping."""

from __future__ import annotations

import re

from ..registry.names import InvalidName

DEPLOYMENT_NAME_RULE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
DEPLOYMENT_NAME = re.compile(DEPLOYMENT_NAME_RULE)
DEPLOYMENT_NAME_RULE_TEXT = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_deployment_name(name: str) -> str:
    """``name`` if it is a valid deployment name; InvalidName (a 400) saying the rule if not."""
    # fullmatch: "$" would also accept a trailing newline.
    if not isinstance(name, str) or not DEPLOYMENT_NAME.fullmatch(name):
        shown = name[:200] if isinstance(name, str) else name
        raise InvalidName(f"invalid deployment name {shown!r}: use {DEPLOYMENT_NAME_RULE_TEXT}")
    return name
