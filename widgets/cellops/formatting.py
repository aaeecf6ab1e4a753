"""One notation for params, shared with the sidebar (extension/src/sidebar/format.ts).

Params are shown as the Python literals a data scientist typed: ``True``, ``None``,
``'lbfgs'``, ``0.1``, ``[64, 32]``, ``{'a': 1}``. Params travel as JSON, so the rules
below use only what JSON keeps; the TypeScript ``formatParam`` applies the same rules
and a test holds the two to the same output. A param a row does not have is ``MISSING``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

MISSING = "—"  # an em dash: the param does not exist there (None is a value)

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def format_param(value: Any) -> str:
    """``value`` as a Python literal (other objects: their ``str``)."""
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_param(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{quote(str(k))}: {format_param(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return str(value)


def quote(text: str) -> str:
    """Python's string repr for printable text: single quotes unless the text has some."""
    mark = '"' if "'" in text and '"' not in text else "'"
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == mark:
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return mark + "".join(out) + mark


def format_number(value: float) -> str:
    """The shortest digits that read back as ``value``, placed as JavaScript's
    ``String(number)`` places them (JSON cannot tell 1.0 from 1, so neither do we)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    k = len(digits)
    n = k + int(exponent)  # value = 0.digits * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"
