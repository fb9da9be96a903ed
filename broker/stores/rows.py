"""How a turn's job rows are written: the columns, the lean insert, statements of many rows.

Derived from the job schema (broker/wire/schema.py): the stored fields, their columns, and
the ones written again after the insert; `attrgetter` builds each row tuple in C.

Two things make a row cheaper (`python -m bench.store_commit` measures them):
- a new job whose later fields are all unset (the broker writes them later, or the job does
  not use them) is inserted without those columns: their defaults stand in. Binding a value
  costs ~0.2 µs, and this is half the row;
- on SQLite, rows go `MANY` to a statement (`INSERT ... VALUES (...), (...)`, `UPDATE ...
  FROM (VALUES ...)`): binding is the same, but one step a statement instead of one a row
  saves about a quarter of an insert and a sixth of an update. The rest of a turn's rows
  (fewer than `MANY`) go one statement each, as PostgreSQL's do (psycopg pipelines those,
  and its VALUES lists would need a type for every untyped NULL).
"""

from __future__ import annotations

import operator
from typing import Any

from zjobs.broker.wire.jobs import Job
from zjobs.broker.wire.schema import MUTABLE, STORED

ATTRS = tuple(f.name for f in STORED)
COLUMNS = tuple(f.stored_as for f in STORED)
INSERT = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
insert_row = operator.attrgetter(*ATTRS)

LATER = ("run_at", "idempotency_key", "worker", "started_at", "finished_at", "schedule",
         "result", "error", "progress", "depends_on", "log_lines", "lost_count")
_UNSET = tuple(f.default for name in LATER for f in STORED if f.name == name)
_later = operator.attrgetter(*LATER)
_LEAN_ATTRS = tuple(name for name in ATTRS if name not in LATER)
_LEAN_COLUMNS = tuple(f.stored_as for f in STORED if f.name in _LEAN_ATTRS)
_lean_row = operator.attrgetter(*_LEAN_ATTRS)

_MUTABLE = tuple(f.stored_as for f in MUTABLE)
_update_row = operator.attrgetter(*(f.name for f in MUTABLE), "id")

MANY = 64  # rows in one statement: 64 x 25 values stay far below SQLite's 32,766


def _values(width: int, rows: int) -> str:
    one = f"({', '.join('?' * width)})"
    return ", ".join([one] * rows)


def _insert_sql(columns: tuple[str, ...], rows: int) -> str:
    return f"INSERT INTO jobs ({', '.join(columns)}) VALUES {_values(len(columns), rows)}"


def _update_sql(rows: int) -> str:
    """The mutable columns of `rows` jobs, each row `(*mutable values, id)`."""
    if rows == 1:
        return f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in _MUTABLE)} WHERE id = ?"
    sets = ", ".join(f"{c} = v.column{i}" for i, c in enumerate(_MUTABLE, 1))
    return (f"UPDATE jobs SET {sets} FROM (VALUES {_values(len(_MUTABLE) + 1, rows)}) AS v "
            f"WHERE jobs.id = v.column{len(_MUTABLE) + 1}")


_LEAN_INSERT = (_insert_sql(_LEAN_COLUMNS, 1), _insert_sql(_LEAN_COLUMNS, MANY))
_FULL_INSERT = (INSERT, _insert_sql(COLUMNS, MANY))
UPDATE = _update_sql(1)
_UPDATES = (UPDATE, _update_sql(MANY))


def insert_jobs(db: Any, jobs: list[Job], many: bool) -> None:
    """Insert new jobs; with `many`, MANY rows a statement where a turn has them."""
    lean = [_lean_row(job) for job in jobs if _later(job) == _UNSET]
    if lean:
        _write(db, _LEAN_INSERT, lean, many)
    if len(lean) < len(jobs):
        _write(db, _FULL_INSERT, [insert_row(job) for job in jobs if _later(job) != _UNSET],
               many)


def update_jobs(db: Any, jobs: list[Job], many: bool) -> None:
    """Write the mutable columns of jobs already stored."""
    if jobs:
        _write(db, _UPDATES, [_update_row(job) for job in jobs], many)


def _write(db: Any, statements: tuple[str, str], rows: list[tuple], many: bool) -> None:
    """`statements`: for one row, and for MANY rows (their values in a row)."""
    whole = len(rows) - len(rows) % MANY if many else 0
    for start in range(0, whole, MANY):
        db.execute(statements[1], [value for row in rows[start:start + MANY] for value in row])
    if whole < len(rows):
        db.executemany(statements[0], rows[whole:])
