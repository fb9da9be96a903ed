"""An `exec` job on the worker: the runner's outcome turned into a RESULT and its artifacts."""

from __future__ import annotations

import mimetypes
import os
from typing import Any

from zjobs.worker.context import JobContext
from zjobs.worker.errors import Outcome, error
from zjobs.worker.exec_box import ExecBox, announce, exec_box
from zjobs.worker.exec_runner import ExecError, run_exec


def worker_box(config: Any) -> ExecBox:
    """The box of a worker's exec jobs, from its settings, said once in its log.

    ``config`` is the WorkerConfig: its ``exec_user``, and its CURVE key (a ClientCurve),
    whose directory the jobs never see. Raises StartError when the box cannot be had (see
    ``exec_box``).
    """
    secret = getattr(config.curve, "secret_key_file", None)
    box = exec_box(config.exec_user,
                   hidden=[os.path.dirname(os.path.abspath(secret))] if secret else [])
    announce(box)
    return box


async def run_exec_job(spec: dict[str, Any], ctx: JobContext,
                       box: ExecBox | None = None) -> tuple[Outcome, list[dict]]:
    """Run the program in ``box``; stdout/stderr lines become the job's log.

    Returns (outcome, artifacts).
    """

    async def on_output(stream: str, line: str) -> None:
        ctx.log(line, stream)

    runnable = {k: v for k, v in spec.items() if k not in ("code_files", "input_files")}
    try:
        result = await run_exec(runnable, spec.get("code_files") or {},
                                spec.get("input_files") or {}, on_output, box=box)
    except ExecError as exc:
        return (False, error("ExecError", str(exc)), None), []
    artifacts = [
        {"name": name, "data": data,
         "content_type": mimetypes.guess_type(name)[0] or "application/octet-stream"}
        for name, data in sorted(result.artifacts.items())
    ]
    if result.timed_out:
        message = f"the program exceeded its timeout of {spec['timeout_s']:g} s and was killed"
        return (False, error("Timeout", message), None), artifacts
    if result.exit_code != 0:
        outcome = error("ExitCode", f"the program exited with code {result.exit_code}")
        outcome["exit_code"] = result.exit_code
        return (False, outcome, None), artifacts
    value = {"exit_code": 0, "artifacts": sorted(result.artifacts),
             "skipped_artifacts": result.skipped_artifacts}
    return (True, value, None), artifacts
