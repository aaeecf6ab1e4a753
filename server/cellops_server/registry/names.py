"""Names clients choose for models and aliases (checked before anything is stored)."""

from __future__ import annotations

import re

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class InvalidName(ValueError):
    """A model or alias name the registry does not accept (answered as 400)."""


def check_model_name(name: str) -> str:
    if not MODEL_NAME.match(name):
        raise InvalidName(
            f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    # Aliases start with a letter so they can never be mistaken for a version number.
    if not ALIAS.match(alias):
        raise InvalidName(
            f"invalid alias {alias!r}: use 1-64 letters, digits, '_' or '-', starting with a letter"
        )
    return alias
