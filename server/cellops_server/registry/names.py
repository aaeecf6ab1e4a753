"""Names clients choose for models and aliases (checked before anything is stored).

Each rule is kept as the bare expression: Python matches it against the whole
string (``fullmatch``: ``$`` would also accept a trailing newline, so ``iris\\n``
would exist beside ``iris``), and the OpenAPI document states it anchored
(``^…$``, which JSON Schema's ECMA-262 regexes read as the whole string).
"""

from __future__ import annotations

import re

MODEL_NAME_RULE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
ALIAS_RULE = r"[A-Za-z][A-Za-z0-9_-]{0,63}"
MODEL_NAME = re.compile(MODEL_NAME_RULE)
ALIAS = re.compile(ALIAS_RULE)
# The rules in words: in the 400s, the OpenAPI document and the sidebar's alias dialog.
MODEL_NAME_RULE_TEXT = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
ALIAS_RULE_TEXT = "1-64 letters, digits, '_' or '-', starting with a letter"


class InvalidName(ValueError):
    """A model or alias name the registry does not accept (answered as 400)."""


def anchored(rule: str) -> str:
    """The rule as a JSON Schema ``pattern`` (ECMA-262 ``$`` is the end of the input)."""
    return f"^{rule}$"


def check_model_name(name: str) -> str:
    if not MODEL_NAME.fullmatch(name):
        raise InvalidName(f"invalid model name {name[:200]!r}: use {MODEL_NAME_RULE_TEXT}")
    return name


def check_alias(alias: str) -> str:
    # Aliases start with a letter so they can never be mistaken for a version number.
    if not ALIAS.fullmatch(alias):
        raise InvalidName(f"invalid alias {alias[:200]!r}: use {ALIAS_RULE_TEXT}")
    return alias
