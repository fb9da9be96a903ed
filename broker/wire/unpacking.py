"""Decoding what a peer sent within bounds: a message builds what its size allows, no more.

msgpack sizes its own bounds from the buffer: a 16 MiB body may be an array of 16.7
million empty arrays, one byte each on the wire and 64 bytes each in CPython, which took
the broker to 1.2 GiB and (the cyclic GC running over every new container) 7.7 s. The
broker decodes what clients and workers send within `DecodeLimits` instead, sized from
its message limit:

- a str or a bin is at most the message limit long; an ext is refused (ZJP/1 has none);
- an array or a map holds at most `max_values` items;
- a whole message decodes into at most `max_values` values, over all its bodies: each
  array item, map key and map value is one, and each array or map itself counts as
  `CONTAINER_VALUES`, since a container costs several times what an item does. Values
  are counted as each container completes, so a bomb stops after `max_values`, however it
  nests (msgpack itself stops at 1,024 levels): 16 MiB of nested empty arrays builds half
  a million of them (34 MiB), not 16.7 million.

A message of at most `max_values / (1 + CONTAINER_VALUES)` bytes cannot hold more than
that (each value takes a byte), so it is decoded with no counting at all: requests of the
usual sizes pay nothing. A larger one is decoded with the cyclic GC paused, since the
objects it builds are either all kept or all freed by reference counting: the GC cannot
free any of them, only cost time. Nothing else in zjobs pauses the GC; the broker decodes
on one thread.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

import msgpack

# On average a value takes at least this many bytes of a full-size message. A job of a
# REST batch, `{"task": "noop", "args": [1]}`, is 14 values in about 20 bytes: a 100,000-job batch
# is 1.4 million values, within the 2.1 million of a 16 MiB message limit.
BYTES_PER_VALUE = 8
CONTAINER_VALUES = 4  # what an array or a map counts, besides its items
MIN_VALUES = 65_536  # even under a tiny message limit, ordinary requests fit


class DecodeLimitError(ValueError):
    """A message would decode into more than its limits allow (`reason` names the limit)."""


# A body this short is decoded with its arrays bounded by its length too: msgpack allocates a
# list of the length its header claims before it reads the items.
SMALL_BODY = 65_536


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_values: int  # values a message may decode into, and items per array or map
    max_bytes: int   # the longest str or bin
    # msgpack.unpackb's keyword arguments for a small body and for a larger one, made once
    small: dict[str, Any] = field(init=False, repr=False, compare=False)
    large: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, items in (("small", min(self.max_values, SMALL_BODY)),
                            ("large", self.max_values)):
            object.__setattr__(self, name, {
                "raw": False, "strict_map_key": False, "max_str_len": self.max_bytes,
                "max_bin_len": self.max_bytes, "max_ext_len": 0, "max_array_len": items,
                "max_map_len": items // 2})

    @classmethod
    def for_message(cls, max_message: int) -> DecodeLimits:
        return cls(max(max_message // BYTES_PER_VALUE, MIN_VALUES), max_message)

    def counter(self, size: int) -> ValueCounter | None:
        """A counter for a message whose bodies are `size` bytes in all, or None if they
        cannot hold more than `max_values` values."""
        too_few = size * (1 + CONTAINER_VALUES) <= self.max_values
        return None if too_few else ValueCounter(self.max_values)


class ValueCounter:
    """The values left to a message; its hooks raise once they run out."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.left = self.limit = limit

    def array(self, items: list[Any]) -> list[Any]:
        self.left -= len(items) + CONTAINER_VALUES
        if self.left < 0:
            raise self._error()
        return items

    def map(self, items: dict[Any, Any]) -> dict[Any, Any]:
        self.left -= 2 * len(items) + CONTAINER_VALUES
        if self.left < 0:
            raise self._error()
        return items

    def _error(self) -> DecodeLimitError:
        return DecodeLimitError(f"the message decodes into more than {self.limit} values "
                                f"(array items, map keys and values; {CONTAINER_VALUES} per "
                                "array or map); send less per message")


def unpack_within(data: bytes, limits: DecodeLimits, counter: ValueCounter | None) -> Any:
    """Decode one msgpack object within `limits` (and `counter`, shared by the bodies of
    one message). Raises DecodeLimitError past a limit, another ValueError (or TypeError)
    for anything malformed."""
    try:
        if counter is None:
            return msgpack.unpackb(data, **(limits.small if len(data) <= SMALL_BODY
                                            else limits.large))
        return _unpack_counted(data, limits.large, counter)
    except ValueError as exc:
        if "exceeds max_" in str(exc):  # msgpack's own check of a length, before it builds
            raise DecodeLimitError(_length_reason(str(exc), limits)) from None
        raise


def _unpack_counted(data: bytes, bounds: dict[str, Any], counter: ValueCounter) -> Any:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return msgpack.unpackb(data, list_hook=counter.array, object_hook=counter.map, **bounds)
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
