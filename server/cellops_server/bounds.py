"""What fits in the store's columns, as pydantic types for the values clients send.

Numbers and times are checked when a request or record is validated, so a value the
database cannot hold is a 400 that says so, never a database error (a 5xx) later.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, Field

# INTEGER columns (PostgreSQL int4): ids, sequence numbers, version numbers, counts.
MAX_INT = 2**31 - 1
MIN_INT = -(2**31)

StoredInt = Annotated[int, Field(ge=MIN_INT, le=MAX_INT)]
PositiveInt = Annotated[int, Field(ge=1, le=MAX_INT)]


def _as_utc(value: datetime) -> datetime:
    """Aware UTC, as UTCDateTime stores it (a naive time is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+05:00 is in year 0 once in UTC
        raise ValueError("time is out of range once converted to UTC (years 1-9999)") from None


StoredTime = Annotated[datetime, AfterValidator(_as_utc)]
