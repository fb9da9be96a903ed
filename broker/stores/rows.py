"""How a turn's job rows are written: the columns, the lean insert, statements of many rows.

Derived from the job schema (broker/wire/schema.py): the stored fields, their columns, and
the ones a new job often leaves at their default (`OPTIONAL`); `attrgetter` builds each
row tuple in C.

Two things make a row cheaper (`python -m bench.store_commit` measures them):
- a new job is inserted without the columns of its OPTIONAL fields still at their default:
  the defaults stand in. Binding a value costs ~0.2 µs, and this is half the row;
- on SQLite, rows go `MANY` to a statement (`INSERT ... VALUES (...), (...)`, `UPDATE ...
  FROM (VALUES ...)`): binding is the same, but one step a statement instead of one a row
  saves about a quarter of an insert and a sixth of an update. The rest of a turn's rows
  (fewer than `MANY`) go one statement each, as PostgreSQL's do (psycopg pipelines those,
  and its VALUES lists would need a type for every untyped NULL).

And a value binds cheaply only as an exact `int`, `float`, `str` or `bytearray`: CPython's
sqlite3 (3.11) sends anything else (`None`, `bytes`, a `str` enum) through its adaptation
lookup first, ~350 ns a value against ~50 (bench/PROFILE.md, round seven). So an insert
leaves those columns out rather than bind a NULL, an update writes its usual NULLs as
literals (`_NULLS`), the statuses are plain strings (`plain_members`), and the broker keeps
a job's payload and result as `bytearray` (`blob`).
"""

from __future__ import annotations

import itertools
import operator
from typing import Any

from zjobs.broker.wire.jobs import Job
from zjobs.broker.wire.schema import BY_NAME, MUTABLE, STORED

ATTRS = tuple(f.name for f in STORED)
COLUMNS = tuple(f.stored_as for f in STORED)
INSERT = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
insert_row = operator.attrgetter(*ATTRS)

# The fields a new job often leaves at their default (no timeout; the rest are written later
# by the broker, or the job does not use them): an insert leaves out the columns of those
# still at it, and their defaults stand in (`_insert_set`).
OPTIONAL = ("timeout_s", "run_at", "idempotency_key", "worker", "started_at", "finished_at",
            "schedule", "result", "error", "progress", "depends_on", "log_lines", "lost_count")
_UNSET = tuple(BY_NAME[name].default for name in OPTIONAL)
_optional = operator.attrgetter(*OPTIONAL)
_OPTIONAL_COLUMNS = tuple(BY_NAME[name].stored_as for name in OPTIONAL)
_LEAN_ATTRS = tuple(name for name in ATTRS if name not in OPTIONAL)
_LEAN_COLUMNS = tuple(f.stored_as for f in STORED if f.name in _LEAN_ATTRS)
_lean_row = operator.attrgetter(*_LEAN_ATTRS)

_MUTABLE = tuple(f.stored_as for f in MUTABLE)
_update_row = operator.attrgetter(*(f.name for f in MUTABLE), "id")
# The mutable fields a job seldom has (scheduled, failed, reporting progress): an update
# of a job that has none of them writes them as NULL literals (`_UPDATES_NULLS`).
_NULLS = ("run_at", "error", "progress")
_nulls = operator.attrgetter(*_NULLS)
_NO_NULLS = (None,) * len(_NULLS)
_BOUND = tuple(f.name for f in MUTABLE if f.name not in _NULLS)
_bound_row = operator.attrgetter(*_BOUND, "id")

MANY = 64  # rows in one statement: 64 x 25 values stay far below SQLite's 32,766


def blob(data: bytes) -> bytearray:
    """A job's payload or result as the broker keeps it: bytes that bind without the
    adaptation lookup (see above). msgpack packs it as `bin`, as it does `bytes`."""
    return bytearray(data)


def _values(width: int, rows: int) -> str:
    one = f"({', '.join('?' * width)})"
    return ", ".join([one] * rows)


def _insert_sql(columns: tuple[str, ...], rows: int) -> str:
    return f"INSERT INTO jobs ({', '.join(columns)}) VALUES {_values(len(columns), rows)}"


def _update_sql(columns: tuple[str, ...], nulls: tuple[str, ...], rows: int) -> str:
    """`columns` of `rows` jobs, each row `(*their values, id)`; `nulls` set to NULL."""
    if rows == 1:
        sets = ", ".join([*(f"{c} = ?" for c in columns), *(f"{c} = NULL" for c in nulls)])
        return f"UPDATE jobs SET {sets} WHERE id = ?"
    sets = ", ".join([*(f"{c} = v.column{i}" for i, c in enumerate(columns, 1)),
                      *(f"{c} = NULL" for c in nulls)])
    return (f"UPDATE jobs SET {sets} FROM (VALUES {_values(len(columns) + 1, rows)}) AS v "
            f"WHERE jobs.id = v.column{len(columns) + 1}")


def _both(sql: Any, *args: Any) -> tuple[str, str]:
    """A statement for one row and for MANY rows."""
    return sql(*args, 1), sql(*args, MANY)


_LEAN_INSERT = _both(_insert_sql, _LEAN_COLUMNS)
_INSERTS: dict[tuple[bool, ...], tuple[str, str]] = {}  # by which OPTIONAL fields are set
_UPDATES = _both(_update_sql, _MUTABLE, ())
_UPDATES_NULLS = _both(_update_sql, tuple(BY_NAME[name].stored_as for name in _BOUND),
                       tuple(BY_NAME[name].stored_as for name in _NULLS))


def insert_jobs(db: Any, jobs: list[Job], many: bool) -> None:
    """Insert new jobs; with `many`, MANY rows a statement where a turn has them."""
    lean, rest = [], []
    for job in jobs:
        if _optional(job) == _UNSET:  # the common case: one comparison, no grouping
            lean.append(_lean_row(job))
        else:
            rest.append(job)
    _write(db, _LEAN_INSERT, lean, many)
    _insert_set(db, rest, many)


def _insert_set(db: Any, jobs: list[Job], many: bool) -> None:
    """Jobs some of whose OPTIONAL fields are set (a timeout; a job that ended before its
    insert): each row has the lean columns and the OPTIONAL fields it sets, rows grouped by
    which."""
    groups: dict[tuple[bool, ...], list[tuple]] = {}
    for job in jobs:
        optional = _optional(job)
        which = tuple(map(operator.ne, optional, _UNSET))
        groups.setdefault(which, []).append((*_lean_row(job),
                                             *itertools.compress(optional, which)))
    for which, rows in groups.items():
        statements = _INSERTS.get(which)
        if statements is None:
            columns = (*_LEAN_COLUMNS, *itertools.compress(_OPTIONAL_COLUMNS, which))
            statements = _INSERTS[which] = _both(_insert_sql, columns)
        _write(db, statements, rows, many)


def update_jobs(db: Any, jobs: list[Job], many: bool) -> None:
    """Write the mutable columns of jobs already stored."""
    plain, rest = [], []
    for job in jobs:
        if _nulls(job) == _NO_NULLS:
            plain.append(_bound_row(job))
        else:
            rest.append(_update_row(job))
    _write(db, _UPDATES_NULLS, plain, many)
    _write(db, _UPDATES, rest, many)


def _write(db: Any, statements: tuple[str, str], rows: list[tuple], many: bool) -> None:
    """`statements`: for one row, and for MANY rows (their values in a row). No rows: no
    statement."""
    whole = len(rows) - len(rows) % MANY if many else 0
    for start in range(0, whole, MANY):
        db.execute(statements[1], [value for row in rows[start:start + MANY] for value in row])
    if whole < len(rows):
        db.executemany(statements[0], rows[whole:])
