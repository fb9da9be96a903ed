"""An exec job submitted as multipart over HTTP: its output on the SSE log stream, its artifact."""

from __future__ import annotations

import httpx

from .server import read_until, sse_messages

PROGRAM = b"""\
import sys
rows = open("rows.csv").read().splitlines()
for i, row in enumerate(rows, 1):
    print(f"row {i}: {row}", flush=True)
    if i % 2 == 0:
        print(f"even {i}", file=sys.stderr, flush=True)
import os
os.makedirs("out", exist_ok=True)
open("out/report.bin", "wb").write(bytes(range(256)) * 16 + b"\\xff\\x00")
"""
ROWS = "\n".join(f"a{i},b{i}" for i in range(1, 7)).encode()


def test_multipart_exec_job_streams_its_lines_and_returns_its_artifact(
        http: httpx.Client) -> None:
    files = [("code_files", ("main.py", PROGRAM, "text/x-python")),
             ("input_files", ("rows.csv", ROWS, "text/csv"))]
    response = http.post("/jobs", data={"spec": '{"entry": "main.py", "timeout_s": 30}'},
                         files=files)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    with http.stream("GET", f"/jobs/{job_id}/logs/stream") as stream:
        seen = read_until(sse_messages(stream.iter_lines()), lambda s: s[-1].event == "end")
    lines = [m.data for m in seen[:-1]]
    assert seen[-1].data == {"status": "succeeded"}
    assert [line["line"] for line in lines] == list(range(1, len(lines) + 1))
    stdout = [line["data"] for line in lines if line["stream"] == "stdout"]
    stderr = [line["data"] for line in lines if line["stream"] == "stderr"]
    assert stdout == [f"row {i}: a{i},b{i}" for i in range(1, 7)]
    assert stderr == ["even 2", "even 4", "even 6"]
    artifact = http.get(f"/jobs/{job_id}/artifacts/report.bin")
    assert artifact.status_code == 200
    assert artifact.content == bytes(range(256)) * 16 + b"\xff\x00"
