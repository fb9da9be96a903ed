"""The Majordomo adapter in the broker loop, turn by turn: a real `BrokerServer` in this
process (its real store, sockets and turns, a fake clock), Majordomo peers as real DEALER
sockets on its `inproc://` MDP endpoint, so that what a turn sends is there when it returns.
The same adapter against majortomo's own Client and Worker, in processes: tests/e2e/test_mdp.py.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.broker.test_engine import FakeClock
from zjobs.broker.bridges import majordomo as mdp
from zjobs.broker.bridges.majordomo import (
    CLIENT,
    FINAL,
    HEARTBEAT,
    PARTIAL,
    READY,
    REQUEST,
    WORKER,
)
from zjobs.broker.server import BrokerConfig, BrokerServer
from zjobs.broker.stores.store import Store
from zjobs.broker.wire.prefetch import STALL_S

SERVICE = b"echo"
ANY = "tcp://127.0.0.1:*"


class Broker:
    """A broker serving MDP in this process; `turn()` runs one turn of its loop."""

    def __init__(self, tmp_path: Path, store: Store | None = None, **config: Any) -> None:
        self.clock = FakeClock()
        self.endpoint = f"inproc://mdp-{uuid.uuid4().hex}"
        self.server = BrokerServer(
            BrokerConfig(frontend=ANY, backend=ANY, events=ANY, data_dir=str(tmp_path),
                         mdp=self.endpoint, **config), clock=self.clock, store=store)
        self.engine = self.server.engine
        self.peers: list[zmq.Socket] = []

    def peer(self) -> zmq.Socket:
        sock = self.server.ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(self.endpoint)
        self.peers.append(sock)
        return sock

    def worker(self, service: bytes = SERVICE) -> zmq.Socket:
        sock = self.peer()
        sock.send_multipart([b"", WORKER, READY, service])
        self.turn()
        return sock

    def request(self, *frames: bytes, service: bytes = SERVICE) -> zmq.Socket:
        sock = self.peer()
        sock.send_multipart([b"", CLIENT, REQUEST, service, *frames])
        return sock

    def turn(self, times: int = 1) -> None:
        assert self.server.mdp is not None
        for _ in range(times):
            self.server.turn({self.server.mdp.sock: zmq.POLLIN})

    def job(self, job_id: str) -> dict[str, Any]:
        found = self.engine.lookup(job_id)
        assert found is not None
        return found

    def close(self) -> None:
        for sock in self.peers:
            sock.close(linger=0)
        self.server.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    made = Broker(tmp_path)
    try:
        yield made
    finally:
        made.close()


def inbox(sock: zmq.Socket) -> list[list[bytes]]:
    """Every message waiting at a peer, without the heartbeats, each after its empty frame."""
    found = []
    while sock.poll(0):
        frames = sock.recv_multipart()
        if frames[2:3] != [HEARTBEAT]:
            found.append(frames[1:])
    return found


def requests(worker: zmq.Socket) -> list[tuple[bytes, list[bytes]]]:
    """The REQUESTs waiting at a Majordomo worker: (the job id, the body frames)."""
    found = inbox(worker)
    assert all(f[:2] == [WORKER, REQUEST] and f[3] == b"" for f in found), found
    return [(f[2], f[4:]) for f in found]


def answer(worker: zmq.Socket, job_id: bytes, *frames: bytes, command: bytes = FINAL) -> None:
    worker.send_multipart([b"", WORKER, command, job_id, b"", *frames])


def replies(client: zmq.Socket) -> list[list[bytes]]:
    found = inbox(client)
    assert all(f[0] == CLIENT for f in found), found
    return [f[1:] for f in found]


def test_a_request_is_a_job_that_a_majordomo_worker_runs(broker: Broker) -> None:
    worker = broker.worker()
    client = broker.request(b"hello", b"world")
    broker.turn()
    [(job_id, body)] = requests(worker)
    assert body == [b"hello", b"world"]
    job = broker.job(job_id.decode())
    assert (job["queue"], job["task"], job["args"]) == ("echo", "echo", [b"hello", b"world"])
    assert job["status"] == "queued" and job["worker"] is None  # sent, not seen started yet
    answer(worker, job_id, b"working", command=PARTIAL)
    answer(worker, job_id, b"echo", b"hello", b"world")
    broker.turn()
    assert replies(client) == [[PARTIAL, b"working"], [FINAL, b"echo", b"hello", b"world"]]
    stored = broker.engine.store.get(job_id.decode())
    assert stored["status"] == "succeeded" and stored["attempts"] == 1
    assert stored["result"] == [b"echo", b"hello", b"world"]
    assert stored["worker"] == "mdp-echo-1"
    assert [line["data"] for line in broker.engine.store.logs(job_id.decode(), 0, 10)] == [
        "working"]


class WatchingStore(Store):
    """A store that notes, at each commit, whether the watched client had a reply waiting."""

    watched: zmq.Socket | None = None
    seen: list[tuple[list[str], bool]]

    def commit(self, inserts, updates, *args, **kwargs) -> None:  # type: ignore[override]
        ended = [job.id for job in [*inserts, *updates] if job.status == "succeeded"]
        self.seen.append((ended, bool(self.watched and self.watched.poll(0))))
        super().commit(inserts, updates, *args, **kwargs)


def test_a_client_hears_of_its_job_only_once_the_end_is_stored(tmp_path: Path) -> None:
    store = WatchingStore(tmp_path)
    store.seen = []
    broker = Broker(tmp_path, store=store)
    try:
        worker = broker.worker()
        client = store.watched = broker.request(b"x")
        broker.turn()
        [(job_id, _)] = requests(worker)
        answer(worker, job_id, b"done")
        store.seen.clear()
        broker.turn()
        assert store.seen == [([job_id.decode()], False)]  # the end's commit, nothing sent yet
        assert replies(client) == [[FINAL, b"done"]]
    finally:
        broker.close()


class FailingStore(Store):
    """A store whose next commit fails (`fail`), as a full disk would."""

    fail = False

    def commit(self, *args, **kwargs) -> None:  # type: ignore[override]
        if self.fail:
            self.fail = False
            raise sqlite3.OperationalError("database or disk is full")
        super().commit(*args, **kwargs)


def test_requests_the_store_refuses_are_answered_with_the_error(tmp_path: Path) -> None:
    store = FailingStore(tmp_path)
    broker = Broker(tmp_path, store=store)
    try:
        worker = broker.worker()
        clients = [broker.request(f"r{i}".encode()) for i in range(3)]
        store.fail = True
        broker.turn()
        for client in clients:
            assert replies(client) == [[FINAL, b"error: unavailable: the store could not be "
                                               b"written; try again"]]
        [(job_id, body)] = requests(worker)  # sent before the commit: taken back, no answer
        answer(worker, job_id, *body)
        after = broker.request(b"after")
        broker.turn(2)
        assert [replies(c) for c in clients] == [[], [], []]
        assert serve(broker, worker, [after]) == [[[FINAL, b"after"]]]
        assert broker.engine.lookup(job_id.decode()) is None
    finally:
        broker.close()


def test_a_request_waiting_past_the_engine_wait_is_waited_for_again(broker: Broker) -> None:
    client = broker.request(b"patient")
    broker.turn()
    for _ in range(3):  # no worker for three waits' time
        broker.clock.t += mdp.WAIT_S + 1
        broker.turn(2)
    assert replies(client) == []
    worker = broker.worker()
    assert serve(broker, worker, [client]) == [[[FINAL, b"patient"]]]


def test_a_silent_worker_is_lost_and_its_request_runs_once_on_another(broker: Broker) -> None:
    doomed = broker.worker()
    client = broker.request(b"once")
    broker.turn()
    [(job_id, _)] = requests(doomed)
    other = broker.worker()
    assert requests(other) == []
    for _ in range(2):  # past the expiry, the other one heartbeating
        broker.clock.t += mdp.MIN_WORKER_EXPIRY_S / 2 + 0.1
        other.send_multipart([b"", WORKER, HEARTBEAT])
        broker.turn(2)
    [(again, body)] = requests(other)
    assert (again, body) == (job_id, [b"once"])
    assert broker.job(job_id.decode())["attempts"] == 1  # it may have run: counted
    assert "worker.lost" in _event_types(broker)  # lost, not left
    answer(doomed, job_id, b"late")  # the lost worker wakes up: told to register again
    answer(other, job_id, b"echo", b"once")
    broker.turn()
    assert inbox(doomed) == [[WORKER, mdp.DISCONNECT]]
    assert replies(client) == [[FINAL, b"echo", b"once"]]
    assert broker.engine.store.get(job_id.decode())["attempts"] == 2


def serve(broker: Broker, worker: zmq.Socket, clients: list[zmq.Socket],
          rounds: int = 20) -> list[list[list[bytes]]]:
    """Let `worker` echo every request it gets until each client has its FINAL; the replies."""
    got: list[list[list[bytes]]] = [[] for _ in clients]
    for _ in range(rounds):
        for job_id, body in requests(worker):
            answer(worker, job_id, *body)
        broker.turn(2)
        for mine, client in zip(got, clients, strict=True):
            mine += replies(client)
        if all(mine and mine[-1][0] == FINAL for mine in got):
            return got
    raise AssertionError(f"not every client answered: {got}")


def _event_types(broker: Broker) -> list[str]:
    return [kind for _, kind, _ in broker.engine.events.window]


def test_a_worker_that_disconnects_hands_back_what_it_held(broker: Broker) -> None:
    leaving = broker.worker()
    clients = [broker.request(f"r{i}".encode()) for i in range(3)]
    broker.turn()
    [(first, _)] = requests(leaving)
    [view] = broker.engine.worker_views()
    assert view["buffered"] == 2  # the request sent to it and one in its window
    leaving.send_multipart([b"", WORKER, mdp.DISCONNECT])
    broker.turn()
    assert broker.engine.worker_views() == [] and "worker.left" in _event_types(broker)
    other = broker.worker()
    assert serve(broker, other, clients) == [[[FINAL, f"r{i}".encode()]] for i in range(3)]
    attempts = {job["args"][0]: job["attempts"]
                for job in broker.engine.store.list({"queue": "echo"}, None, 10)}
    # the request it had may have run: an attempt; the one in its window had not
    assert attempts == {b"r0": 2, b"r1": 1, b"r2": 1}
    assert broker.job(first.decode())["args"] == [b"r0"]


def test_a_long_request_shows_started_and_hands_its_window_back(broker: Broker) -> None:
    busy = broker.worker()
    broker.request(b"long")
    waiting = [broker.request(f"s{i}".encode()) for i in range(2)]
    broker.turn()
    [(long_id, _)] = requests(busy)
    assert broker.job(long_id.decode())["status"] == "queued"  # not seen started yet
    [view] = broker.engine.worker_views()
    assert (view["running"], view["buffered"]) == ([], 2)
    broker.clock.t += STALL_S + 0.01
    broker.turn()
    assert broker.job(long_id.decode())["status"] == "running"
    [view] = broker.engine.worker_views()
    assert (view["running"], view["buffered"]) == ([long_id.decode()], 0)  # its window: back
    other = broker.worker()
    assert sorted(sum(serve(broker, other, waiting), [])) == [[FINAL, b"s0"], [FINAL, b"s1"]]
    assert requests(busy) == []


SENT = 1 + int(mdp.AHEAD_S / 0.001)  # at 1 ms a request: the one it runs and those ahead


def _paced(broker: Broker, n: int) -> tuple[zmq.Socket, list[zmq.Socket]]:
    """A worker that has answered one request in 1 ms, with `n` more requests queued."""
    worker = broker.worker()
    clients = [broker.request(f"q{i}".encode()) for i in range(n + 1)]
    broker.turn()
    [(job_id, body)] = requests(worker)  # its pace unknown: one request at a time
    broker.clock.t += 0.001
    answer(worker, job_id, *body)
    broker.turn(2)
    return worker, clients


def test_requests_go_ahead_of_the_one_a_worker_runs_as_its_pace_allows(broker: Broker) -> None:
    worker, clients = _paced(broker, SENT + 2)
    ahead = requests(worker)
    assert len(ahead) == SENT  # AHEAD_S of work beside the one it runs
    assert [body for _, body in ahead] == [[f"q{i}".encode()] for i in range(1, len(ahead) + 1)]
    broker.clock.t += STALL_S + 0.01  # the first of them runs long
    broker.turn()
    assert requests(worker) == []  # no more go ahead, the window went back
    [view] = broker.engine.worker_views()
    assert view["running"] == [ahead[0][0].decode()] and view["buffered"] == len(ahead) - 1
    for job_id, body in ahead:
        answer(worker, job_id, *body)
    got = serve(broker, worker, clients[1:])
    assert got == [[[FINAL, f"q{i}".encode()]] for i in range(1, SENT + 3)]


def test_answers_read_together_share_the_time_they_took(broker: Broker) -> None:
    worker, clients = _paced(broker, 3 * SENT)
    ahead = requests(worker)
    assert len(ahead) == SENT
    broker.clock.t += 0.001 * SENT  # it answers them all, read in one drain: 1 ms each still
    for job_id, body in ahead:
        answer(worker, job_id, *body)
    broker.turn()
    assert len(requests(worker)) == SENT


def test_a_lost_worker_s_requests_sent_ahead_go_back_uncounted(broker: Broker) -> None:
    doomed, clients = _paced(broker, SENT + 2)
    ahead = requests(doomed)
    assert len(ahead) == SENT
    other = broker.worker()
    for _ in range(2):  # past the expiry, the other one heartbeating
        broker.clock.t += mdp.MIN_WORKER_EXPIRY_S / 2 + 0.1
        other.send_multipart([b"", WORKER, HEARTBEAT])
        broker.turn(2)
    n = SENT + 3
    assert serve(broker, other, clients[1:]) == [[[FINAL, f"q{i}".encode()]] for i in range(1, n)]
    attempts = {job["args"][0]: job["attempts"]
                for job in broker.engine.store.list({"queue": "echo"}, None, 100)}
    # the one it ran may have run: counted; those waiting behind it had not started
    assert attempts == {b"q0": 1, b"q1": 2, **{f"q{i}".encode(): 1 for i in range(2, n)}}


def test_a_request_cancelled_at_the_worker_is_answered_once(broker: Broker) -> None:
    worker, clients = _paced(broker, 3)
    [first, second, *_] = requests(worker)
    broker.engine.cancel(second[0].decode())
    broker.turn()
    assert replies(clients[2]) == [[FINAL, b"error: Cancelled: cancelled by request"]]
    for job_id, body in [first, second]:  # it runs the cancelled one all the same
        answer(worker, job_id, *body)
    broker.turn(2)
    assert replies(clients[2]) == []  # its late answer is dropped
    assert replies(clients[1]) == [[FINAL, b"q1"]]
    assert broker.engine.store.get(second[0].decode())["status"] == "cancelled"


def test_hostile_messages_are_counted_and_answered_as_they_deserve(broker: Broker) -> None:
    garbage = broker.peer()
    for frames in ([b"x"], [b"", b"MDPC02"], [b"", CLIENT, REQUEST], [b"", b"MDPX99", REQUEST],
                   [b"", CLIENT, REQUEST, b"\xff"], [b"nonempty", CLIENT, REQUEST, SERVICE]):
        garbage.send_multipart(frames)
    worker = broker.worker()
    worker.send_multipart([b"", WORKER, b"\x09"])  # no such command
    broker.turn()
    assert broker.engine.stats["malformed"] == 7 and inbox(garbage) == []
    assert [v["name"] for v in broker.engine.worker_views()] == ["mdp-echo-1"]  # still there
    stranger = broker.peer()
    answer(stranger, b"no-such-job", b"x")  # a worker the broker does not know
    bad_name = broker.worker(service=b"s" * 300)  # no queue may have that name
    broker.turn()
    assert inbox(stranger) == [[WORKER, mdp.DISCONNECT]]
    assert inbox(bad_name) == [[WORKER, mdp.DISCONNECT]]
    assert len(broker.engine.worker_views()) == 1
    client = broker.request(b"x", service=b"s" * 300)
    broker.turn()
    [[command, error]] = replies(client)
    assert command == FINAL and error.startswith(b"error: bad_request: job 0: queue")


def test_mmi_service_says_whether_a_majordomo_worker_serves_it(broker: Broker) -> None:
    def ask(service: bytes, *frames: bytes) -> list[list[bytes]]:
        client = broker.request(*frames, service=service)
        broker.turn()
        return replies(client)

    assert ask(b"mmi.service", SERVICE) == [[FINAL, b"404"]]
    broker.worker()
    assert ask(b"mmi.service", SERVICE) == [[FINAL, b"200"]]
    assert ask(b"mmi.workers", SERVICE) == [[FINAL, b"501"]]


def test_oversized_requests_and_replies_fail_alone(tmp_path: Path) -> None:
    broker = Broker(tmp_path, max_message=1000)
    try:
        worker = broker.worker()
        too_big = broker.request(bytes(1001))
        fine = broker.request(b"small")
        broker.turn()
        [[command, error]] = replies(too_big)
        assert command == FINAL and error.startswith(b"error: too_large: ")
        [(job_id, _)] = requests(worker)
        answer(worker, job_id, bytes(1001))
        broker.turn()
        assert replies(fine) == [[FINAL, b"error: ResultTooLarge: the result message exceeds "
                                         b"the 1000 byte message limit"]]
        assert broker.engine.stats["too_large"] == 2
    finally:
        broker.close()


def test_a_job_whose_args_are_not_frames_fails_without_reaching_the_worker(
        broker: Broker) -> None:
    worker = broker.worker()
    [job_id] = broker.engine.submit([{"task": "echo", "queue": "echo", "args": [1, 2]}])
    broker.turn(2)
    assert requests(worker) == []
    job = broker.job(job_id)
    assert (job["status"], job["error"]["type"]) == ("failed", "BadRequest")
