"""The job schema (broker/schema.py) is the one definition of a job's fields.

Every place that lists the fields derives them from it, or, where deriving
is impossible (the Python client's explicit keyword options, the store's
migrations), is compared with it here, so that adding a field is one edit
in the table plus a migration, and a forgotten place fails a test.
"""

from __future__ import annotations

import inspect
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest

from zjobs.api.schemas import FORM_FIELDS, ExecForm
from zjobs.api.schemas import Job as RestJob
from zjobs.api.uploads import OPTION_FIELDS
from zjobs.broker.client import client as client_module
from zjobs.broker.client.client import AsyncClient, Client
from zjobs.broker.client.models import JobSpec
from zjobs.broker.core.submit import build_job
from zjobs.broker.stores.store import Store
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.jobs import TERMINAL, Job
from zjobs.broker.wire.schema import FIELDS, STORED, SUBMIT_OPTIONS, SUBMITTED, WIRE
from zjobs.cli import submit as submit_command

NOW = 1_700_000_000.0

# The wire shape of a job (Job.to_wire, GET over ZeroMQ, REST before ISO times): clients rely
# on it, so a change to it must be a decision, made here too.
WIRE_KEYS = [
    "id", "queue", "kind", "task", "priority", "timeout_s", "max_retries", "retry_backoff_s",
    "run_at", "idempotency_key", "status", "attempts", "worker", "created_at", "started_at",
    "finished_at", "schedule", "args", "kwargs", "result", "error", "progress", "depends_on",
]


def columns(path: Path) -> dict[str, str]:
    """Column name -> declared SQL type of the `jobs` table."""
    db = sqlite3.connect(path / "zjobs.db")
    try:
        return {row[1]: row[2] for row in db.execute("PRAGMA table_info(jobs)")}
    finally:
        db.close()


def test_every_stored_field_is_a_column_of_a_fresh_store_and_nothing_else_is(
        tmp_path: Path) -> None:
    Store(tmp_path).close()
    assert columns(tmp_path) == {f.stored_as: f.sql for f in STORED}


def test_a_job_goes_through_the_store_and_comes_back_the_same(tmp_path: Path) -> None:
    job = build_job({"task": "add", "args": [1, 2], "kwargs": {"k": "v"}, "priority": 5,
                     "timeout_s": 2.5, "max_retries": 3, "idempotency_key": "once",
                     "run_at": NOW + 60}, NOW)
    assert list(job.to_wire()) == WIRE_KEYS
    store = Store(tmp_path)
    try:
        store.commit([job], [], [], [], {})
        job.status, job.attempts, job.worker, job.log_lines = "running", 1, "w1", 4
        store.commit([], [job], [], [], {})
        again = store.load_job(job.id)
        assert again is not None
        assert {name: getattr(again, name) for name in Job.__slots__} == \
            {name: getattr(job, name) for name in Job.__slots__}
        assert store.get(job.id) == job.to_wire()
    finally:
        store.close()


def test_the_job_slots_are_the_stored_fields_and_the_wire_shows_the_shown_ones() -> None:
    assert Job.__slots__ == tuple(f.name for f in STORED)
    assert [f.name for f in WIRE if f.name != "spec"] == WIRE_KEYS  # spec: exec jobs only


def test_every_submitted_field_is_a_field_of_jobspec_with_the_schemas_default() -> None:
    assert list(JobSpec.model_fields) == [f.name for f in SUBMITTED]
    for field in SUBMITTED:
        info = JobSpec.model_fields[field.name]
        assert info.get_default(call_default_factory=True) == field.default, field.name
        assert info.description == field.help


def test_the_rest_models_have_every_shown_field_and_every_form_option() -> None:
    # `unserved`: not a field of the job but of the broker's view of it (engine `_view`)
    assert list(RestJob.model_fields) == [*(f.name for f in WIRE), "unserved"]
    assert {f.name for f in SUBMIT_OPTIONS} < OPTION_FIELDS == {f.name for f in FORM_FIELDS}
    assert set(ExecForm.model_fields) == {"spec", "code_files", "input_files", *OPTION_FIELDS}


def test_every_submit_option_is_a_zjobs_submit_option_with_its_default_and_help() -> None:
    params = {p.name: p for p in submit_command.params}
    for field in SUBMIT_OPTIONS:
        option = params[field.name]
        assert option.opts == ["--" + field.name.replace("_", "-")]
        assert option.default == field.default and option.help == field.help


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_the_clients_submit_keywords_are_the_submit_options(cls: type) -> None:
    """Client.submit spells its options out (for users and IDEs): they must match the table."""
    signature = inspect.signature(cls.submit)
    keywords = {name: p.default for name, p in signature.parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == {f.name: f.default for f in SUBMIT_OPTIONS}


def test_the_clients_terminal_states_are_the_brokers() -> None:
    from zjobs.broker.client import plans

    assert plans.TERMINAL is TERMINAL  # the client core's wait loops use the broker's set
    source = Path(plans.__file__).read_text() + Path(client_module.__file__).read_text()
    assert '"succeeded", "failed", "cancelled"' not in source


def test_the_broker_core_retries_and_purges_the_wire_states() -> None:
    from zjobs.broker.core import commands, engine
    from zjobs.broker.wire import jobs

    assert commands.RETRYABLE is jobs.RETRYABLE  # RETRY_MANY's check, RETRY's in the engine
    assert engine.PURGEABLE is jobs.WAITING  # what a purge cancels
    for module in (commands, engine):
        source = Path(module.__file__).read_text()
        assert '{"failed", "cancelled"}' not in source and "S.FAILED, S.CANCELLED" not in source


# A value out of bounds for each kind of check: each must be refused by every way in.
REFUSED: list[tuple[str, Any]] = [
    ("priority", lim.PRIORITY_MAX + 1), ("priority", lim.PRIORITY_MIN - 1),
    ("priority", 1.5), ("max_retries", -1), ("max_retries", lim.MAX_RETRIES_MAX + 1),
    ("retry_backoff_s", -0.1), ("retry_backoff_s", lim.RETRY_BACKOFF_MAX_S * 2),
    ("retry_backoff_s", float("inf")), ("timeout_s", 0), ("timeout_s", float("nan")),
    ("timeout_s", lim.TIMEOUT_MAX_S + 1), ("queue", ""), ("queue", "q" * (lim.QUEUE_MAX_LEN + 1)),
    ("idempotency_key", "k" * (lim.IDEMPOTENCY_KEY_MAX_LEN + 1)),
    ("id", "i" * (lim.ID_MAX_LEN + 1)), ("run_at", -1), ("run_at", "not a time"),
    ("kind", "shell"), ("task", "t" * (lim.TASK_MAX_LEN + 1)),
]
ACCEPTED: list[tuple[str, Any]] = [
    ("priority", lim.PRIORITY_MAX), ("priority", lim.PRIORITY_MIN), ("max_retries", 0),
    ("max_retries", lim.MAX_RETRIES_MAX), ("retry_backoff_s", 0),
    ("timeout_s", lim.TIMEOUT_MAX_S), ("timeout_s", 0.001), ("queue", "q" * lim.QUEUE_MAX_LEN),
    ("id", "i" * lim.ID_MAX_LEN), ("run_at", "2030-01-01T00:00:00Z"), ("run_at", NOW),
]


@pytest.mark.parametrize(("name", "value"), REFUSED)
def test_out_of_bounds_is_refused_by_build_job_and_by_the_edge_models(name: str,
                                                                      value: Any) -> None:
    job = {"task": "add", name: value}
    with pytest.raises((TypeError, ValueError), match=name):
        build_job(job, NOW)
    with pytest.raises(pydantic.ValidationError) as refused:
        JobSpec.model_validate(job)  # the client's and POST /jobs's model
    assert refused.value.errors()[0]["loc"][0] == name
    if name in ExecForm.model_fields and not isinstance(value, str) and name != "run_at":
        with pytest.raises(pydantic.ValidationError):
            ExecForm.model_validate({"spec": "{}", name: value})  # multipart, as documented


@pytest.mark.parametrize(("name", "value"), ACCEPTED)
def test_the_bounds_themselves_are_accepted_everywhere(name: str, value: Any) -> None:
    job = {"task": "add", name: value}
    build_job(job, NOW)
    wire = JobSpec.model_validate(job).to_wire()
    assert build_job(wire, NOW).to_wire()[name] == build_job(job, NOW).to_wire()[name]


def test_every_field_says_what_it_is() -> None:
    for field in FIELDS:
        assert field.help and field.set_by in ("submitter", "broker"), field.name
        assert not (field.option and field.set_by != "submitter"), field.name
        assert not (field.in_payload and field.sql), field.name


ADD_A_FIELD = r'''
import importlib.util, sys
from pathlib import Path

# The one edit: a new entry in the schema's table, before anything derives from it.
path = Path("broker/wire/schema.py")
source = path.read_text().replace("    # bookkeeping\n", """\
    JobField("tags", str | None, None, "labels the submitter gives", SUBMITTER, sql="TEXT",
             max_len=20),
    # bookkeeping
""", 1)
import zjobs.broker.wire  # a package that imports nothing: the schema is not loaded yet
schema = importlib.util.module_from_spec(
    importlib.util.spec_from_file_location("zjobs.broker.wire.schema", path))
sys.modules["zjobs.broker.wire.schema"] = schema
exec(compile(source, str(path), "exec"), schema.__dict__)

# The migration, appended.
from zjobs.broker.stores import migrations
migrations.VERSION += 1
migrations.MIGRATIONS.append((migrations.VERSION, "jobs.tags",
                              "ALTER TABLE jobs ADD COLUMN tags TEXT;"))

# Nothing else: every way in and out knows the field.
import pydantic
from zjobs.api.schemas import Job as RestJob
from zjobs.broker.client.models import JobSpec
from zjobs.broker.core.submit import build_job
from zjobs.broker.stores.store import Store

store = Store(sys.argv[1])
job = build_job(JobSpec.model_validate({"task": "add", "tags": "a,b"}).to_wire(), 1.0e9)
store.commit([job], [], [], [], {})
assert store.get(job.id)["tags"] == "a,b"
assert store.load_job(job.id).tags == "a,b"
assert "tags" in RestJob.model_fields
for refuse in (lambda: build_job({"task": "add", "tags": "x" * 21}, 1.0e9),
               lambda: JobSpec.model_validate({"task": "add", "tags": "x" * 21})):
    try:
        refuse()
    except (ValueError, TypeError, pydantic.ValidationError):
        continue
    raise AssertionError("a tag over its bound was accepted")
store.close()
print("ok")
'''


def test_adding_a_field_is_one_entry_in_the_table_plus_a_migration(tmp_path: Path) -> None:
    """In a fresh interpreter: the table edited and a migration appended, nothing else."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", ADD_A_FIELD, str(tmp_path)], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
