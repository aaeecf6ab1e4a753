"""The headers of a delivery: which event, which delivery (the same on every retry), when,
and an HMAC-SHA256 signature over ``"<timestamp>.<body>"`` with the webhook's secret.

The timestamp is inside what is signed, so a receiver that refuses old timestamps is not
open to a replay of a captured request.
"""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, timestamp: int, body: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def headers(secret: str, event: str, delivery: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "X-Cellops-Event": event,
        "X-Cellops-Delivery": delivery,
        "X-Cellops-Timestamp": str(timestamp),
        "X-Cellops-Signature": signature(secret, timestamp, body),
    }


def verify(secret: str, timestamp: str, body: str, sent: str) -> bool:
    """What a receiver does (tests and examples use it): compare in constant time."""
    try:
        expected = signature(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, sent)
