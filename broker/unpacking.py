"""Decoding what a peer sent within bounds: a message builds what its size allows, no more.

msgpack sizes its own bounds from the buffer: a 16 MiB body may be an array of 16.7
million empty arrays, one byte each on the wire and 64 bytes each in CPython, which took
the broker to 1.2 GiB and (the cyclic GC running over every new container) 7.7 s. The
broker decodes what clients and workers send within `DecodeLimits` instead, sized from
its message limit:

- a str or a bin is at most the message limit long; an ext is refused (ZJP/1 has none);
- an array or a map holds at most `max_values` items (never more than its bytes allow);
- a whole message decodes into at most `max_values` values: array items, map keys and
  map values, and the containers themselves. They are counted as each container
  completes, so a bomb stops after `max_values`, however it nests (msgpack itself stops
  at 1,024 levels).

A message of at most `max_values / 2` bytes cannot hold more values than that (each value
takes a byte), so it is decoded with no counting at all: requests of the usual sizes pay
nothing. A larger one is decoded with the cyclic GC paused, since the objects it builds
are either all kept or all freed by reference counting: the GC cannot free any of them,
only cost time. Nothing else in zjobs pauses the GC; the broker decodes on one thread.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import msgpack

# On average a value takes at least this many bytes of a full-size message. A job of a
# REST batch is about 8 values in 25 bytes, so a 100,000-job batch decodes well within it.
BYTES_PER_VALUE = 8
MIN_VALUES = 65_536  # even under a tiny message limit, ordinary requests fit


class DecodeLimitError(ValueError):
    """A message would decode into more than its limits allow (`reason` names the limit)."""


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_values: int  # values a message may decode into, and items per array or map
    max_bytes: int   # the longest str or bin

    @classmethod
    def for_message(cls, max_message: int) -> DecodeLimits:
        return cls(max(max_message // BYTES_PER_VALUE, MIN_VALUES), max_message)

    def counter(self, size: int) -> ValueCounter | None:
        """A counter for a message whose bodies are `size` bytes in all, or None if they
        cannot hold more than `max_values` values."""
        return ValueCounter(self.max_values) if 2 * size > self.max_values else None


class ValueCounter:
    """The values left to a message; its hooks raise once they run out."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.left = self.limit = limit

    def array(self, items: list[Any]) -> list[Any]:
        self.left -= len(items) + 1
        if self.left < 0:
            raise self._error()
        return items

    def map(self, items: dict[Any, Any]) -> dict[Any, Any]:
        self.left -= 2 * len(items) + 1
        if self.left < 0:
            raise self._error()
        return items

    def _error(self) -> DecodeLimitError:
        return DecodeLimitError(f"the message decodes into more than {self.limit} values "
                                "(array items, map keys and values); send less per message")


def unpack_within(data: bytes, limits: DecodeLimits, counter: ValueCounter | None) -> Any:
    """Decode one msgpack object within `limits` (and `counter`, shared by the bodies of
    one message). Raises DecodeLimitError past a limit, another ValueError (or TypeError)
    for anything malformed."""
    items = min(limits.max_values, len(data))
    bounds = {"max_str_len": limits.max_bytes, "max_bin_len": limits.max_bytes,
              "max_ext_len": 0, "max_array_len": items, "max_map_len": items // 2}
    try:
        if counter is None:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, **bounds)
        return _unpack_counted(data, bounds, counter)
    except ValueError as exc:
        if "exceeds max_" in str(exc):  # msgpack's own check of a length, before it builds
            raise DecodeLimitError(_length_reason(str(exc), limits)) from None
        raise


def _unpack_counted(data: bytes, bounds: dict[str, int], counter: ValueCounter) -> Any:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, list_hook=counter.array,
                               object_hook=counter.map, **bounds)
    finally:
        if was_enabled:
            gc.enable()


def _length_reason(message: str, limits: DecodeLimits) -> str:
    """msgpack's `N exceeds max_array_len(M)` in words."""
    length, _, which = message.partition(" exceeds max_")
    kind = which.split("_len", 1)[0]
    if kind == "ext":
        return "msgpack ext types are not part of ZJP/1"
    if kind in ("str", "bin"):
        return f"a {kind} of {length} bytes exceeds the {limits.max_bytes} byte message limit"
    article = "an" if kind == "array" else "a"
    return (f"{article} {kind} of {length} items exceeds the limit of {limits.max_values} "
            "values per message")
