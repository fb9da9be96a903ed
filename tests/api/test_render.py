"""Pure pieces of the API: REST rendering and upload names."""

from __future__ import annotations

import json

import pytest

from zjobs.api.openapi import openapi_path
from zjobs.api.render import dumps, job_json
from zjobs.api.uploads import bad_name


def test_job_times_become_iso_utc_and_bytes_base64() -> None:
    job = {"id": "j", "created_at": 0.5, "started_at": None, "finished_at": 86400,
           "run_at": None, "result": b"\x00\x01"}
    out = json.loads(dumps(job_json(job)))
    assert out["created_at"] == "1970-01-01T00:00:00.500000Z"
    assert out["finished_at"] == "1970-01-02T00:00:00Z"
    assert out["started_at"] is None
    assert out["result"] == "AAE="
    assert job["created_at"] == 0.5  # the broker's dict is left alone


def test_non_finite_floats_do_not_break_json() -> None:
    assert json.loads(dumps({"result": [float("nan"), float("inf"), 1.5, b"a"]})) == {
        "result": ["nan", "inf", 1.5, "YQ=="]}


@pytest.mark.parametrize("name", ["main.py", "lib/util.py", "./a.py", "a//b.txt"])
def test_safe_names_pass(name: str) -> None:
    assert bad_name(name) is None


@pytest.mark.parametrize("name", ["", "..", "../a", "a/../../b", "/etc/passwd", "a\\b",
                                  "a\x00b", ".", "./", None])
def test_unsafe_names_are_refused(name: object) -> None:
    assert bad_name(name) is not None


def test_openapi_paths_drop_converters() -> None:
    assert openapi_path("/jobs/{job_id}/artifacts/{name:path}") == \
        "/jobs/{job_id}/artifacts/{name}"


def test_the_openapi_document_is_valid_openapi() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    from zjobs.api.openapi import document

    validator.validate(document())
