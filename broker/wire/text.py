"""One rule for the text that names things, at every way in.

Queue, task and schedule names, job ids, idempotency keys, worker and artifact
names, cursors: each is kept in a TEXT column, compared in SQL and shown in
events, logs and URLs. Such a text must be

- a string of 1 to `max_len` characters (the bounds are in `broker.limits`);
- free of NUL: PostgreSQL's text cannot hold it (a NUL that reached the store
  failed every commit after it), and C strings end at it;
- valid Unicode: no lone surrogate (`"\\udc80"`, which JSON can spell but
  UTF-8, msgpack and both stores cannot).

The broker checks it in its decoders (`broker.schema` for a job's fields,
`broker.commands` for a command's, `broker.schedules`), the edge models of
the client and the API with the same function, so REST, the Python client and
a raw ZJP client are refused alike (422, `ValidationError`, `ERR
bad_request`) and nothing that breaks a store reaches one. The data a job
carries (`args`, `kwargs`, a result) is not text in this sense: it is packed
into bytes and may hold anything msgpack can.
"""

from __future__ import annotations

import re
from typing import Any


def text_problem(value: Any, max_len: int) -> str | None:
    """Why `value` cannot name something (a phrase to follow the field's name), or None."""
    return texts_problem([value], max_len)


def check_text(value: Any, name: str, max_len: int) -> str:
    """`value` if it may name something; ValueError (TypeError if not a string) naming `name`."""
    problem = text_problem(value, max_len)
    if problem is None:
        return value
    raise (ValueError if isinstance(value, str) else TypeError)(f"{name} {problem}")


def texts_problem(values: list[Any], max_len: int) -> str | None:
    """`text_problem` of each of `values` at once (the phrase says what each must be), in a
    few passes at C speed: a WAIT may carry thousands of job ids."""
    try:
        joined = "".join(values)
    except TypeError:  # not all strings
        return "must be a string"
    if values and not (min(map(len, values)) > 0 and max(map(len, values)) <= max_len):
        return f"must be 1 to {max_len} characters"
    if "\x00" in joined:
        return "must not contain NUL (\\u0000)"
    if not joined.isascii() and not _encodable(joined):
        return "must be valid Unicode (it holds a lone surrogate)"
    return None


def has_lone_surrogate(value: str) -> bool:
    """Whether `value` holds a code point UTF-8 cannot encode (a lone surrogate)."""
    return not value.isascii() and not _encodable(value)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(value: str) -> str:
    """`value` as free text a store can keep (a log line a worker sent): a NUL and a lone
    surrogate become U+FFFD, the rest stays as it is. Cheap for the common ASCII line."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii() and not _encodable(value):
        value = _SURROGATE.sub("\ufffd", value)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")
