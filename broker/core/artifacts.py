"""Artifacts that arrive in chunks: what has come of each, and whether a RESULT may complete.

A worker sends each artifact as ARTIFACT chunks, in order, before the RESULT
that lists it (name and size). The chunks go to the store as they arrive,
with the turn's commit, so the broker keeps only their counts in memory, never
the data; the RESULT completes its job only if every artifact it lists came
whole. Chunks travel in order on one connection, so a chunk missing when the
RESULT arrives is lost, not late: the attempt fails with `ArtifactsIncomplete`
(and is retried if the job allows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(slots=True)
class _Part:
    """One artifact of one attempt, as far as it has come."""

    content_type: str
    next_index: int = 0
    size: int = 0
    done: bool = False
    broken: str | None = None


@dataclass(slots=True)
class _Transfer:
    attempt: int
    parts: dict[str, _Part] = field(default_factory=dict)
    size: int = 0


class ArtifactTransfers:
    """The chunked artifacts of running attempts; at most `max_bytes` per attempt."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._jobs: dict[str, _Transfer] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def chunk(self, job_id: str, body: dict[str, Any]) -> tuple | None:
        """Account for one ARTIFACT chunk of the job's current attempt.

        Returns the row to store `(job_id, name, attempt, index, data)`, or None when the
        chunk is refused (out of order, after the last one, over the size limit); a
        refused chunk breaks its artifact, which the RESULT then reports.
        """
        attempt = body["attempt"]
        transfer = self._jobs.get(job_id)
        if transfer is None or transfer.attempt != attempt:
            transfer = self._jobs[job_id] = _Transfer(attempt)
        name = body["name"]
        part = transfer.parts.get(name)
        if part is None:
            content_type = body.get("content_type")
            part = transfer.parts[name] = _Part(
                content_type if isinstance(content_type, str) and content_type
                else DEFAULT_CONTENT_TYPE)
        data: bytes = body["data"]
        problem = self._refusal(part, transfer, body["index"], len(data))
        if problem is not None:
            part.broken = part.broken or problem
            return None
        part.next_index += 1
        part.size += len(data)
        transfer.size += len(data)
        part.done = body["last"]
        return (job_id, name, attempt, body["index"], data)

    def _refusal(self, part: _Part, transfer: _Transfer, index: int, size: int) -> str | None:
        if part.broken is not None:
            return part.broken
        if part.done:
            return "a chunk came after the last one"
        if index != part.next_index:
            return f"chunk {index} came where chunk {part.next_index} was due"
        if transfer.size + size > self.max_bytes:
            return f"the attempt's artifacts exceed the {self.max_bytes} byte limit"
        return None

    def complete(self, job_id: str, attempt: int,
                 listed: list[dict[str, Any]]) -> tuple[list[tuple], str | None]:
        """Close the attempt's transfer for a RESULT listing `listed` (`{name, size}` each).

        Returns the artifact rows `(job_id, name, content_type, size, b"", attempt)` and
        None, or no rows and why the RESULT cannot complete the job.
        """
        transfer = self._jobs.pop(job_id, None)
        parts = transfer.parts if transfer is not None and transfer.attempt == attempt else {}
        rows, problems = [], []
        for item in listed:
            name = item["name"]
            part = parts.get(name)
            problem = _incomplete(part, item.get("size"))
            if problem is not None or part is None:  # (None has its problem)
                problems.append(f"{name}: {problem}")
            else:
                rows.append((job_id, name, part.content_type, part.size, b"", attempt))
        if problems:
            return [], "artifacts did not arrive whole: " + "; ".join(problems)
        return rows, None

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)


def _incomplete(part: _Part | None, size: Any) -> str | None:
    if part is None:
        return "no chunk arrived"
    if part.broken is not None:
        return part.broken
    if not part.done:
        return f"the last chunk did not arrive ({part.size} bytes came)"
    if part.size != size:
        return f"{part.size} bytes came, the result lists {size}"
    return None
