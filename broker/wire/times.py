"""Job times: epoch seconds on the wire and in the store, ISO-8601 UTC strings in REST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from zjobs.broker.wire.limits import RUN_AT_MAX, RUN_AT_MIN, finite_in


def iso(ts: float | None) -> str | None:
    """Epoch seconds to an ISO-8601 UTC string (REST)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> float | None:
    """Epoch seconds or an ISO-8601 string to epoch seconds; ValueError otherwise.

    The time must be finite and within `RUN_AT_MIN`..`RUN_AT_MAX`, so that it
    can be stored and shown as an ISO-8601 string.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("run_at must be epoch seconds or an ISO-8601 string")
    if isinstance(value, int | float):
        seconds: float = value
    elif isinstance(value, str):
        seconds = _iso_seconds(value)
    else:
        raise ValueError("run_at must be epoch seconds or an ISO-8601 string")
    return finite_in(seconds, "run_at", RUN_AT_MIN, RUN_AT_MAX)


def _iso_seconds(value: str) -> float:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"run_at is not an ISO-8601 time: {value[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        raise ValueError(f"run_at is out of range: {value[:40]!r}") from None
