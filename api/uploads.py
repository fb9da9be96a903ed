"""`exec` jobs: file names made safe, and the multipart form turned into a job.

A multipart `POST /jobs` carries `spec` (the exec spec as JSON), repeatable
`code_files` / `input_files` uploads whose filename is the path inside the
job directory, and optional job options as plain fields (the job schema's
submit options and `id`: `api.schemas.FORM_FIELDS`); a number is read from
its text here, since the job model takes numbers as numbers only. File names
that could leave the job directory (`..`, absolute, backslash, NUL, empty)
are refused with 422 here; the worker checks again.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from zjobs.api.bodies import parse_json
from zjobs.api.errors import ApiError
from zjobs.api.schemas import FORM_FIELDS

FILE_FIELDS = ("code_files", "input_files")
OPTION_FIELDS = frozenset(f.name for f in FORM_FIELDS)
LIST_FIELDS = frozenset(f.name for f in FORM_FIELDS if f.base is list)
NUMBER_FIELDS = {f.name: f.base for f in FORM_FIELDS if f.base in (int, float) and not f.time}
MAX_FILES = 1000
MAX_FIELDS = 100


def bad_name(name: Any) -> str | None:
    """Why `name` cannot be a file path inside the job directory, or None if it can."""
    if not isinstance(name, str) or not name:
        return "empty file name"
    if "\x00" in name or "\\" in name:
        return "NUL or backslash in file name"
    if name.startswith("/"):
        return "absolute path"
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        return "'..' in path"
    if not parts:
        return "file name names no file"
    return None


def check_exec_files(job: dict[str, Any], where: str = "spec") -> None:
    """422 if an `exec` job carries a file whose name could escape its directory."""
    spec = job.get("spec") or {}
    for field in FILE_FIELDS:
        for name in spec.get(field) or {}:
            reason = bad_name(name)
            if reason is not None:
                raise ApiError(422, f"{where}.{field}: {name!r}: {reason}")


async def exec_job_from_form(request: Request, max_part_size: int) -> dict[str, Any]:
    """The job dict (not yet validated) of a multipart exec submission."""
    form = await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS,
                              max_part_size=max_part_size)
    try:
        return await _job_from(form)
    finally:
        await form.close()


async def _job_from(form: FormData) -> dict[str, Any]:
    spec: dict[str, Any] | None = None
    files: dict[str, dict[str, bytes]] = {field: {} for field in FILE_FIELDS}
    options: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in FILE_FIELDS:
            await _add_file(files[key], key, value)
        elif key == "spec":
            spec = _spec(value)
        elif key in OPTION_FIELDS:
            if isinstance(value, str) and value != "":
                if key in LIST_FIELDS:  # repeatable: depends_on=a&depends_on=b
                    options.setdefault(key, []).append(value)
                else:
                    options[key] = _option(key, value)
        else:
            raise ApiError(422, f"unknown form field {key!r}")
    if spec is None:
        raise ApiError(422, "spec: a multipart submission needs a `spec` field (JSON)")
    for field in FILE_FIELDS:
        spec[field] = {**(spec.get(field) or {}), **files[field]}
    return {**options, "kind": "exec", "spec": spec}


def _option(key: str, text: str) -> Any:
    """A form field's value as its job field takes it: a number from its text."""
    number = NUMBER_FIELDS.get(key)
    if number is None:
        return text
    try:
        return number(text)
    except ValueError:  # int("1.5"), int of 5,000 digits, float("soon")
        noun = "an integer" if number is int else "a number"
        raise ApiError(422, f"{key}: must be {noun}, got {text[:40]!r}") from None


async def _add_file(into: dict[str, bytes], field: str, value: str | UploadFile) -> None:
    if not isinstance(value, UploadFile):
        raise ApiError(422, f"{field}: must be a file upload with a filename")
    name = value.filename or ""
    reason = bad_name(name)
    if reason is not None:
        raise ApiError(422, f"{field}: {name!r}: {reason}")
    if name in into:
        raise ApiError(422, f"{field}: {name!r} uploaded twice")
    into[name] = await value.read()


def _spec(value: str | UploadFile) -> dict[str, Any]:
    if not isinstance(value, str):
        raise ApiError(422, "spec: must be a form field holding JSON, not a file")
    spec = parse_json(value, "spec")  # malformed JSON: 400
    if not isinstance(spec, dict):
        raise ApiError(422, "spec: must be a JSON object")
    if not isinstance(spec.get("code_files", {}), dict) or \
            not isinstance(spec.get("input_files", {}), dict):
        raise ApiError(422, "spec: code_files and input_files must be objects")
    return spec
