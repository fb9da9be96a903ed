"""ZJP/1: the zjobs wire protocol. The only module that knows the frame layout.

Client (DEALER) -> frontend (ROUTER):   [b"ZJC1", command, request_id, body]
Frontend -> client:                     [b"ZJC1", b"OK" | b"ERR", request_id, body]
Worker (DEALER) <-> backend (ROUTER):   [b"ZJW1", command, body, body, ...]
Events (PUB):                           [topic, body] or [topic, b"ZJB1", array of bodies]

Bodies are msgpack maps. A worker message may carry several bodies: the
command applies to each, which is how jobs and results are batched on the
wire. Every decoder here is pure and raises `ProtocolError` for anything
malformed, never another exception, so the broker can count the message and
go on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from zjobs.broker.wire.settings import default
from zjobs.broker.wire.unpacking import (
    DecodeLimitError,
    DecodeLimits,
    ValueCounter,
    unpack_within,
)

CLIENT_HEADER = b"ZJC1"
WORKER_HEADER = b"ZJW1"
EVENT_BATCH = b"ZJB1"  # an events message carrying a run of events: [topic, ZJB1, array]

# client commands
SUBMIT = b"SUBMIT"
GET = b"GET"
LIST = b"LIST"
CANCEL = b"CANCEL"
RETRY = b"RETRY"
WAIT = b"WAIT"
LOGS = b"LOGS"
EVENTS = b"EVENTS"
STATS = b"STATS"
PING = b"PING"
WORKERS = b"WORKERS"
ARTIFACT = b"ARTIFACT"
SCHEDULE = b"SCHEDULE"      # create or replace a schedule
SCHEDULES = b"SCHEDULES"    # every schedule, or the one named
UNSCHEDULE = b"UNSCHEDULE"  # remove a schedule
QUEUE = b"QUEUE"  # change a queue's settings: {"name", "paused"?, "rate_limit"?}
PURGE = b"PURGE"  # cancel a queue's waiting jobs: {"name"}
RETRY_MANY = b"RETRY_MANY"  # re-run a page of failed/cancelled jobs: {"status"?, "queue"?}
CLIENT_COMMANDS = frozenset(
    {SUBMIT, GET, LIST, CANCEL, RETRY, WAIT, LOGS, EVENTS, STATS, PING, WORKERS, ARTIFACT,
     SCHEDULE, SCHEDULES, UNSCHEDULE, QUEUE, PURGE, RETRY_MANY}
)

OK = b"OK"
ERR = b"ERR"

# worker -> broker
READY = b"READY"
HEARTBEAT = b"HEARTBEAT"
STARTED = b"STARTED"
LOG = b"LOG"
PROGRESS = b"PROGRESS"
RESULT = b"RESULT"
DISCONNECT = b"DISCONNECT"
WINDOW = b"WINDOW"  # worker -> broker: a new prefetch window, and buffered jobs handed back
ARTIFACT_CHUNK = ARTIFACT  # worker -> broker: one chunk of an artifact, sent before the RESULT
# broker -> worker
JOB = b"JOB"
CANCEL_JOB = b"CANCEL"

# Required keys and their types per worker command body; extra keys are allowed.
_WORKER_BODY_SCHEMA: dict[bytes, dict[str, type | tuple[type, ...]]] = {
    READY: {"name": str, "queues": list, "capacity": int},
    HEARTBEAT: {},
    STARTED: {"job_id": str, "attempt": int},
    LOG: {"job_id": str, "attempt": int, "stream": str, "data": str},
    PROGRESS: {"job_id": str, "fraction": (int, float)},
    RESULT: {"job_id": str, "attempt": int, "ok": bool},
    ARTIFACT_CHUNK: {"job_id": str, "attempt": int, "name": str, "index": int, "data": bytes,
                     "last": bool},
    DISCONNECT: {},
    WINDOW: {"prefetch": int},
}
_BROKER_BODY_SCHEMA: dict[bytes, dict[str, type | tuple[type, ...]]] = {
    JOB: {"id": str, "kind": str, "attempt": int},
    CANCEL_JOB: {"job_id": str},
    HEARTBEAT: {},
    DISCONNECT: {},
}

MAX_REQUEST_ID = 64
DEFAULT_MAX_MESSAGE = default("max_message")
# What a client request or worker message may decode into (broker/unpacking.py); the broker
# sizes its own from --max-message.
DEFAULT_LIMITS = DecodeLimits.for_message(DEFAULT_MAX_MESSAGE)
# A map's keys read to find the fields of a message too large to decode (a RESULT has ~10).
PEEK_MAX_KEYS = 64

# What a worker message spends besides its bodies: the header and the longest command frame.
WORKER_ENVELOPE_BYTES = len(WORKER_HEADER) + 16
# An artifact travels in chunks of at most this many bytes (fewer under a small message limit),
# so no message nears the limit and the broker commits a large artifact over several turns.
ARTIFACT_CHUNK_BYTES = 1024 * 1024
# Room a chunk body keeps for its other fields (job id, name, content type...).
_CHUNK_FIELDS_BYTES = 8 * 1024


class ProtocolError(Exception):
    """A message that is not valid ZJP/1. `request_id` is set when a reply can be addressed;
    `code` is the error a client is answered (`too_large`: past a decode limit)."""

    def __init__(self, reason: str, request_id: bytes | None = None,
                 code: str = "bad_request") -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id
        self.code = code


@dataclass(slots=True, frozen=True)
class ClientRequest:
    command: bytes
    request_id: bytes
    body: dict[str, Any]


@dataclass(slots=True, frozen=True)
class ClientReply:
    ok: bool
    request_id: bytes
    body: Any


@dataclass(slots=True, frozen=True)
class WorkerMessage:
    command: bytes
    bodies: list[dict[str, Any]]


_packer = msgpack.Packer(use_bin_type=True)


def pack(obj: Any) -> bytes:
    """msgpack-encode `obj` (bytes stay bytes, str stays str). One reused Packer: not threadsafe,
    and every user of this module packs from one thread (the broker loop, a client's caller)."""
    try:
        return _packer.pack(obj)
    except BaseException:
        _packer.reset()
        raise


def unpack(data: bytes | bytearray) -> Any:
    """msgpack-decode one object; anything malformed raises ProtocolError."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises many types; all mean "malformed"
        raise ProtocolError(f"malformed msgpack body: {type(exc).__name__}") from exc


def unpack_peer(data: bytes, limits: DecodeLimits, counter: ValueCounter | None = None,
                request_id: bytes | None = None) -> Any:
    """msgpack-decode what a client or worker sent, within `limits` (broker/unpacking.py).
    Past a limit: ProtocolError with code `too_large`; anything malformed: `bad_request`."""
    try:
        return unpack_within(data, limits, counter)
    except DecodeLimitError as exc:
        raise ProtocolError(str(exc), request_id, "too_large") from None
    except Exception as exc:  # msgpack raises many types; all mean "malformed"
        raise ProtocolError(f"malformed msgpack body: {type(exc).__name__}", request_id) from None


def _unpack_map(data: bytes, request_id: bytes | None = None,
                limits: DecodeLimits | None = None,
                counter: ValueCounter | None = None) -> dict[str, Any]:
    """A body that must be a map; within `limits` when given (what peers send the broker)."""
    if not data:
        return {}
    if limits is not None:
        body = unpack_peer(data, limits, counter, request_id)
    else:
        try:
            body = unpack(data)
        except ProtocolError as exc:
            raise ProtocolError(exc.reason, request_id) from None
    if not isinstance(body, dict):
        raise ProtocolError("body must be a msgpack map", request_id)
    return body


# ---------------------------------------------------------------- client side


def encode_request(command: bytes, request_id: bytes, body: Any) -> list[bytes]:
    return [CLIENT_HEADER, command, request_id, pack(body)]


def decode_request(frames: list[bytes], limits: DecodeLimits = DEFAULT_LIMITS) -> ClientRequest:
    """Decode the frames a client sent (without the ROUTER identity), its body within
    `limits`."""
    request_id = _guess_request_id(frames)
    if len(frames) != 4:
        raise ProtocolError(f"expected 4 frames, got {len(frames)}", request_id)
    header, command, rid, body = frames
    if header != CLIENT_HEADER:
        raise ProtocolError("bad header: expected ZJC1", request_id)
    if command not in CLIENT_COMMANDS:
        raise ProtocolError(f"unknown command {command[:32]!r}", request_id)
    if len(rid) > MAX_REQUEST_ID:
        raise ProtocolError("request_id too long", None)
    return ClientRequest(command, rid,
                         _unpack_map(body, rid, limits, limits.counter(len(body))))


def _guess_request_id(frames: list[bytes]) -> bytes | None:
    if len(frames) >= 3 and len(frames[2]) <= MAX_REQUEST_ID:
        return bytes(frames[2])
    return None


def encode_reply(ok: bool, request_id: bytes, body: Any) -> list[bytes]:
    return [CLIENT_HEADER, OK if ok else ERR, request_id, pack(body)]


def encode_reply_raw(request_id: bytes, packed_body: bytes) -> list[bytes]:
    """An OK reply whose body is already msgpack-encoded (the replay fast path)."""
    return [CLIENT_HEADER, OK, request_id, packed_body]


def encode_error(request_id: bytes, code: str, message: str) -> list[bytes]:
    return encode_reply(False, request_id, {"code": code, "message": message})


def decode_reply(frames: list[bytes]) -> ClientReply:
    if len(frames) != 4 or frames[0] != CLIENT_HEADER or frames[1] not in (OK, ERR):
        raise ProtocolError("malformed reply")
    body = unpack(frames[3]) if frames[3] else None
    return ClientReply(frames[1] == OK, bytes(frames[2]), body)


# ---------------------------------------------------------------- worker side


def encode_worker(command: bytes, *bodies: Any) -> list[bytes]:
    """A worker-protocol message; no body, one body, or a batch of bodies."""
    return [WORKER_HEADER, command, *(pack(b) for b in bodies)]


def encode_worker_packed(command: bytes, packed_bodies: list[bytes]) -> list[bytes]:
    return [WORKER_HEADER, command, *packed_bodies]


JOB_FIELDS = ("id", "kind", "task", "attempt", "timeout_s", "queue", "payload")
COMPACT_JOB_BYTES = 1024 * 1024  # a compact JOB body holds jobs up to about this many bytes


def job_body(job: tuple) -> bytes:
    """One JOB body in the single form: a map of `JOB_FIELDS`."""
    return pack(dict(zip(JOB_FIELDS, job, strict=True)))


def encode_jobs(compact: bool, jobs: list[tuple], max_message: int) -> list[bytes]:
    """The JOB bodies of one message: a packed map per job, or for a worker whose READY said
    `compact`, arrays of job arrays (fields in `JOB_FIELDS` order), no map per job. A compact
    body closes near COMPACT_JOB_BYTES of payload, so no frame nears the message limit."""
    if not compact:
        return [job_body(job) for job in jobs]
    room = min(COMPACT_JOB_BYTES, max_body_bytes(max_message) // 2)
    bodies, start, used = [], 0, 0
    for index, job in enumerate(jobs):
        size = len(job[6] or b"") + 128
        if used and used + size > room:
            bodies.append(pack(jobs[start:index]))
            start, used = index, 0
        used += size
    bodies.append(pack(jobs[start:]))
    return bodies


def decode_jobs(bodies: list[Any]) -> list[dict[str, Any]]:
    """The jobs of a decoded JOB message, from both forms (a map, or an array of arrays)."""
    jobs: list[dict[str, Any]] = []
    for body in bodies:
        if isinstance(body, dict):
            jobs.append(body)
            continue
        for item in body:
            if not isinstance(item, list | tuple) or len(item) != len(JOB_FIELDS):
                raise ProtocolError("JOB: a compact job is not an array of "
                                    f"{len(JOB_FIELDS)} fields")
            job = dict(zip(JOB_FIELDS, item, strict=True))
            _check_fields(job, _BROKER_BODY_SCHEMA[JOB], JOB)
            jobs.append(job)
    return jobs


def decode_worker(frames: list[bytes], limits: DecodeLimits = DEFAULT_LIMITS) -> WorkerMessage:
    """Decode what a worker sent to the backend (without the ROUTER identity); its bodies
    together within `limits`."""
    return _decode_worker_frames(frames, _WORKER_BODY_SCHEMA, limits)


def decode_broker(frames: list[bytes]) -> WorkerMessage:
    """Decode what the broker sent to a worker."""
    return _decode_worker_frames(frames, _BROKER_BODY_SCHEMA)


def _decode_worker_frames(
    frames: list[bytes], schema: dict[bytes, dict[str, type | tuple[type, ...]]],
    limits: DecodeLimits | None = None,
) -> WorkerMessage:
    if len(frames) < 2:
        raise ProtocolError(f"expected at least 2 frames, got {len(frames)}")
    if frames[0] != WORKER_HEADER:
        raise ProtocolError("bad header: expected ZJW1")
    command = bytes(frames[1])
    required = schema.get(command)
    if required is None:
        raise ProtocolError(f"unknown worker command {command[:32]!r}")
    if command == JOB and schema is _BROKER_BODY_SCHEMA:
        return WorkerMessage(command, _job_bodies(frames[2:]))
    counter = None if limits is None else limits.counter(sum(len(f) for f in frames[2:]))
    bodies = [_unpack_map(f, None, limits, counter) for f in frames[2:]]
    for body in bodies:
        _check_fields(body, required, command)
    return WorkerMessage(command, bodies)


def _job_bodies(frames: list[bytes]) -> list[Any]:
    """JOB bodies as sent: maps checked here, compact arrays checked by `decode_jobs`."""
    bodies = []
    for frame in frames:
        body = unpack(frame) if frame else {}
        if isinstance(body, dict):
            _check_fields(body, _BROKER_BODY_SCHEMA[JOB], JOB)
        elif not isinstance(body, list):
            raise ProtocolError("JOB: a body must be a map or an array of jobs")
        bodies.append(body)
    return bodies


def _check_fields(
    body: dict[str, Any], required: dict[str, type | tuple[type, ...]], command: bytes
) -> None:
    for key, kind in required.items():
        value = body.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProtocolError(f"{command.decode()}: field {key!r} missing or not {kind}")


def max_body_bytes(max_message: int) -> int:
    """The largest packed body a worker message of one body may carry under `max_message`."""
    return max_message - WORKER_ENVELOPE_BYTES


def chunk_bytes(max_message: int) -> int:
    """The data bytes per ARTIFACT chunk under `max_message` (at least 1)."""
    room = max_body_bytes(max_message) - _CHUNK_FIELDS_BYTES
    return max(min(ARTIFACT_CHUNK_BYTES, room), 1)


def artifact_chunks(job_id: str, attempt: int, artifact: dict[str, Any],
                    max_message: int) -> list[dict[str, Any]]:
    """The ARTIFACT bodies of one artifact `{name, content_type, data}`, in order.

    An empty artifact is one chunk with no data; the last chunk says `last: True`.
    """
    data: bytes = artifact["data"]
    step = chunk_bytes(max_message)
    starts = range(0, len(data), step) if data else range(1)
    return [
        {"job_id": job_id, "attempt": attempt, "name": artifact["name"],
         "content_type": artifact.get("content_type") or "application/octet-stream",
         "index": index, "offset": start, "data": data[start:start + step],
         "last": index == len(starts) - 1}
        for index, start in enumerate(starts)
    ]


def split_batches(bodies: list[bytes], max_message: int) -> list[list[bytes]]:
    """Group packed bodies into as few worker messages as fit under `max_message`, in order.

    A body too large for any message is left out: the sender checks sizes before it packs.
    """
    room = max_body_bytes(max_message)
    batches: list[list[bytes]] = []
    current: list[bytes] = []
    used = 0
    for body in bodies:
        size = len(body)
        if size > room:
            continue
        if current and used + size > room:
            batches.append(current)
            current, used = [], 0
        current.append(body)
        used += size
    if current:
        batches.append(current)
    return batches


def peek_worker(frames: list[bytes], keys: tuple[str, ...] = ("job_id", "attempt")
                ) -> WorkerMessage:
    """The command and, per body, only the fields `keys` of a worker message too large to decode.

    The bodies are walked without building their other values, so an oversized RESULT can
    still fail its job by name. Raises ProtocolError for anything malformed.
    """
    if len(frames) < 2 or frames[0] != WORKER_HEADER:
        raise ProtocolError("bad header: expected ZJW1")
    command = bytes(frames[1])
    if command not in _WORKER_BODY_SCHEMA:
        raise ProtocolError(f"unknown worker command {command[:32]!r}")
    return WorkerMessage(command, [_peek_map(frame, keys) for frame in frames[2:]])


def _peek_map(data: bytes, keys: tuple[str, ...]) -> dict[str, Any]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(data) or 1,
                                max_array_len=PEEK_MAX_KEYS, max_map_len=PEEK_MAX_KEYS,
                                max_ext_len=0)
    try:
        unpacker.feed(data)
        found: dict[str, Any] = {}
        for _ in range(min(unpacker.read_map_header(), PEEK_MAX_KEYS)):
            key = unpacker.unpack()
            if key in keys:
                found[key] = unpacker.unpack()
            else:
                unpacker.skip()
    except Exception as exc:  # msgpack raises many types; all mean "malformed"
        raise ProtocolError(f"malformed msgpack body: {type(exc).__name__}") from exc
    return found


def ready_running(body: dict[str, Any]) -> dict[str, int]:
    """The jobs a READY says its worker is running, as job_id -> attempt.

    `running` is optional (`[{job_id, attempt}, ...]`); a worker that
    re-registers lists what it still runs so the broker keeps it there.
    """
    running = body.get("running")
    if running is None:
        return {}
    if not isinstance(running, list):
        raise ProtocolError("READY: field 'running' is not a list")
    jobs: dict[str, int] = {}
    for item in running:
        if not isinstance(item, dict):
            raise ProtocolError("READY: a 'running' entry is not a map")
        _check_fields(item, {"job_id": str, "attempt": int}, READY)
        jobs[item["job_id"]] = item["attempt"]
    return jobs


def returned_ids(body: dict[str, Any]) -> list[str]:
    """The buffered jobs a WINDOW or a DISCONNECT hands back (`returned`: job ids)."""
    returned = body.get("returned")
    if returned is None:
        return []
    if not isinstance(returned, list) or not all(isinstance(i, str) for i in returned):
        raise ProtocolError("field 'returned' is not a list of job ids")
    return returned


# ---------------------------------------------------------------- events


def encode_event(event: dict[str, Any]) -> list[bytes]:
    return [event["type"].encode(), pack(event)]


def encode_event_run(topic: bytes, bodies: list[bytes]) -> list[bytes]:
    """One PUB message for packed events of type `topic` with consecutive seqs, in seq order:
    the single form `[topic, body]` for one, else `[topic, ZJB1, array of the bodies]`."""
    if len(bodies) == 1:
        return [topic, bodies[0]]
    return [topic, EVENT_BATCH, packed_array(bodies)]


def decode_events(frames: list[bytes]) -> list[dict[str, Any]]:
    """The events of one PUB message, either form, in seq order (at least one).

    Every event must be a map with an int `seq` and the topic as its `type`, and
    a batch's seqs must follow each other, so a reader can check for gaps on
    the first event alone.
    """
    if len(frames) == 2:  # the single form, checked inline: a quiet bus is all single events
        event = _unpack_map(frames[1])
        type_ = event.get("type")
        if type(event.get("seq")) is not int or type(type_) is not str or (
                type_.encode() != frames[0]):
            raise ProtocolError(_NOT_AN_EVENT)
        return [event]
    if len(frames) != 3:
        raise ProtocolError(f"expected 2 or 3 event frames, got {len(frames)}")
    if frames[1] != EVENT_BATCH:
        raise ProtocolError("bad event batch header: expected ZJB1")
    events = unpack(frames[2])
    if not isinstance(events, list) or not events:
        raise ProtocolError("an event batch must be a non-empty msgpack array")
    _check_run(events, frames[0])
    return events


_NOT_AN_EVENT = "an event is not a map with an int seq and the topic as its type"


def _check_run(events: list[Any], topic: bytes) -> None:
    try:
        type_ = bytes(topic).decode()
    except UnicodeDecodeError:
        raise ProtocolError(_NOT_AN_EVENT) from None
    first = None
    for offset, event in enumerate(events):
        if not isinstance(event, dict) or event.get("type") != type_ or (
                type(event.get("seq")) is not int):
            raise ProtocolError(_NOT_AN_EVENT)
        if first is None:
            first = event["seq"]
        elif event["seq"] != first + offset:
            raise ProtocolError("the seqs of an event batch do not follow each other")


def packed_array(items: list[bytes]) -> bytes:
    """Concatenate already-packed msgpack objects into one packed array."""
    packer = msgpack.Packer(use_bin_type=True)
    return packer.pack_array_header(len(items)) + b"".join(items)


def packed_map(fields: dict[str, Any], packed_values: dict[str, bytes]) -> bytes:
    """A packed map of `fields` plus entries whose values are already packed."""
    packer = msgpack.Packer(use_bin_type=True)
    parts = [packer.pack_map_header(len(fields) + len(packed_values))]
    for key, value in fields.items():
        parts += [packer.pack(key), packer.pack(value)]
    for key, packed in packed_values.items():
        parts += [packer.pack(key), packed]
    return b"".join(parts)
