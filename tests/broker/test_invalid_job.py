"""A bad option in the Python client is one zjobs error that names the field, not pydantic's
raw report; it is raised before anything is sent."""

from __future__ import annotations

import pytest

from tests.waiting import free_port
from zjobs import Client, InvalidJob, ZJobsError


@pytest.fixture
def client():
    with Client(f"tcp://127.0.0.1:{free_port()}", timeout=0.5) as c:  # nobody there
        yield c


@pytest.mark.parametrize(("options", "field", "says"), [
    ({"priority": "high"}, "priority", "valid integer (got 'high')"),
    ({"max_retries": -1}, "max_retries", "greater than or equal to 0 (got -1)"),
    ({"timeout_s": 0}, "timeout_s", "greater than 0 (got 0)"),
    ({"run_at": "soonish"}, "run_at", "not an ISO-8601 time: 'soonish'"),
])
def test_a_bad_option_names_its_field_in_one_line(client: Client, options: dict, field: str,
                                                  says: str) -> None:
    with pytest.raises(InvalidJob) as raised:
        client.submit("add", 1, 2, **options)
    error = raised.value
    assert isinstance(error, ZJobsError) and isinstance(error, ValueError)
    assert error.field == field
    assert str(error).startswith(f"invalid job: {field}: ") and says in str(error)
    assert "\n" not in str(error) and "pydantic" not in str(error)
    assert error.__suppress_context__  # no pydantic report chained under it


def test_a_bad_job_in_a_batch_is_named_by_its_position(client: Client) -> None:
    with pytest.raises(InvalidJob) as raised:
        client.submit_many([{"task": "add"}, {"task": "add", "priority": "x"}, {"args": [1]}])
    assert str(raised.value) == (
        "invalid job: job 1: priority: Input should be a valid integer (got 'x'); job 2: a "
        "task job needs `task`, the registered task name")
