"""What a turn sends: replies to clients and messages to workers, sent by the server after
the turn's commit (`Engine.flush`), so nothing goes out that the store could still lose."""

from __future__ import annotations

from dataclasses import dataclass, field

from zjobs.broker.wire import protocol as p

# A JOB as the turn queues it: (id, kind, task, attempt, timeout_s, queue, payload); the
# server packs a worker's whole batch at once (protocol.encode_jobs).
JobTuple = tuple[str, str, str | None, int, float | None, str, bytes | bytearray | None]


@dataclass(slots=True)
class Outbox:
    replies: list[tuple[bytes, list[bytes]]] = field(default_factory=list)
    to_workers: dict[bytes, dict[bytes, list[bytes]]] = field(default_factory=dict)
    # the turn's JOBs per worker identity, and whether that worker reads the compact form
    jobs: dict[bytes, tuple[bool, list[JobTuple]]] = field(default_factory=dict)

    def reply(self, identity: bytes, frames: list[bytes]) -> None:
        self.replies.append((identity, frames))

    def job(self, identity: bytes, compact: bool, job: JobTuple) -> None:
        entry = self.jobs.get(identity)
        if entry is None:
            entry = self.jobs[identity] = (compact, [])
        entry[1].append(job)

    def to_worker(self, identity: bytes, command: bytes, packed: bytes | None = None) -> None:
        batch = self.to_workers.setdefault(identity, {}).setdefault(command, [])
        if packed is not None:
            batch.append(packed)

    def cancel_job(self, identity: bytes, job_id: str) -> None:
        """Tell the worker to stop the job, or drop it from its buffer."""
        self.to_worker(identity, p.CANCEL_JOB, p.pack({"job_id": job_id}))

    def take(self) -> tuple[list[tuple[bytes, list[bytes]]], dict[bytes, dict[bytes, list[bytes]]]]:
        """The replies, and every message to workers as packed bodies by command, JOBs in
        their single form: what tests and tools read."""
        jobs, workers = self.take_workers()
        for identity, (_, batch) in jobs.items():
            bodies = workers.setdefault(identity, {}).setdefault(p.JOB, [])
            bodies.extend(p.job_body(job) for job in batch)
        return self.take_replies(), workers

    def take_replies(self) -> list[tuple[bytes, list[bytes]]]:
        replies, self.replies = self.replies, []
        return replies

    def take_workers(self) -> tuple[dict[bytes, tuple[bool, list[JobTuple]]],
                                    dict[bytes, dict[bytes, list[bytes]]]]:
        """The turn's JOBs and the other messages to workers, by identity."""
        jobs, self.jobs = self.jobs, {}
        workers, self.to_workers = self.to_workers, {}
        return jobs, workers
