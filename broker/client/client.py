"""The direct ZeroMQ client: `Client` (blocking) and `AsyncClient` (asyncio).

Both speak ZJP/1 over one DEALER socket with many requests in flight, each
matched to its reply by request id. A broker that does not answer within
`timeout` raises BrokerUnreachable (a TimeoutError); the client never hangs.
Its `sent` says whether the request left at all: a request that could not
be sent (no broker connected) was certainly not carried out.
A broker that refuses the client's CURVE key raises AuthError instead, as
soon as the handshake fails. A request the broker refuses because this
connection already has 500 held (WAITs, SUBMITs with wait) raises BrokerError
with code `busy`: nothing of it was done, and it may be sent again once some
of those have been answered. It is not retried here: the caller knows which
of its waits it can give up. Jobs are validated here, at the edge, so the
broker loop only does cheap checks.

A socket monitor also tells when the connection comes back after it was lost
(a broker restart): the client then sends its pending reads again, a WAIT
with what is left of its timeout, so a `wait` spanning a restart asks the new
broker instead of timing out.

What each operation asks and does with the answer is written once, as a plan
in `plans.py`; `methods.py`, generated from the plans (`methods_gen.py`), holds
each as a typed method of the same name, parameters and docstring on both
clients (a coroutine function or an async generator on `AsyncClient`). The two
classes below add only the I/O: sending a request and reading its reply,
pipelining a batch, waiting for a live event.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Container, Iterator
from typing import TYPE_CHECKING, Any, cast

import zmq
import zmq.asyncio

from zjobs.broker.client.link import WATCHED, Link, Outstanding
from zjobs.broker.client.methods import AsyncClientMethods, ClientMethods
from zjobs.broker.client.plans import (
    Batch,
    Call,
    Emit,
    Live,
    Plan,
    Plans,
    Steps,
    Stream,
    T,
    returning,
)
from zjobs.broker.client.submit_batches import SubmitBatches, joinable
from zjobs.broker.client.wait_batches import WaitBatches
from zjobs.broker.wire import protocol as p
from zjobs.broker.wire.curve import apply_client_curve
from zjobs.broker.wire.errors import AuthError, BrokerError, BrokerUnreachable
from zjobs.broker.wire.settings import default
from zjobs.broker.wire.sockets import (
    cancel_and_wait,
    endpoint_list,
    received,
    recv_frames,
    send_frames,
)

__all__ = ["AsyncClient", "Client"]

DEFAULT_FRONTEND = default("frontend")
# libzmq reconnects from 100 ms doubling to this cap, each interval with random jitter added.
RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 5000
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000
MONITORS = itertools.count()  # a monitor endpoint per socket of this process


def _dealer(ctx: zmq.Context, endpoint: str, curve: Any) -> tuple[zmq.Socket, zmq.Socket]:
    """The DEALER to the frontend and the monitor socket watching its handshakes."""
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue a request for a broker that is not there
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
    # ZMTP heartbeats: a broker frozen with its connection open (a stopped process, a frozen
    # host) is dropped after HEARTBEAT_TIMEOUT_MS, so that with a primary and a standby in
    # the endpoint list no request goes to the frozen one (IMMEDIATE: never to a peer that
    # has not finished its handshake).
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.sndhwm = sock.rcvhwm = 100_000
    if curve is not None:
        apply_client_curve(sock, curve)
    # before connect: no handshake goes unseen. An address of its own: pyzmq's default names
    # it after the socket's file descriptor, which a client opened just after another closed
    # reuses while the old monitor's endpoint may still be bound, so its events never came
    monitor = sock.get_monitor_socket(WATCHED, addr=f"inproc://zjobs-monitor-{next(MONITORS)}")
    for one in endpoint_list(endpoint):  # a primary and its standbys: only one is bound
        sock.connect(one)
    return sock, monitor


def _checked(reply: p.ClientReply) -> Any:
    if not reply.ok:
        body = reply.body if isinstance(reply.body, dict) else {}
        raise BrokerError(str(body.get("code", "error")), str(body.get("message", "")))
    return reply.body


def _batch_outcome(results: list[Any]) -> list[Any]:
    """The replies of a batch's requests, or the error that stands for the batch: a broker
    that did not answer, `sent` if any request of the batch left; else the first error."""
    errors = [r for r in results if isinstance(r, BaseException)]
    if not errors:
        return results
    silent = [e for e in errors if isinstance(e, BrokerUnreachable)]
    if not silent:
        raise errors[0]
    unsent = sum(not e.sent for e in silent)
    raise BrokerUnreachable(silent[0].endpoint, silent[0].timeout_s,
                            sent=unsent < len(results))


def _decoded(frames: list[bytes]) -> p.ClientReply | None:
    try:
        return p.decode_reply(frames)
    except p.ProtocolError:
        return None  # not a reply to us: dropped


class _BaseClient:
    """What both clients share: the settings, the plans, the request table, SUB sockets.

    The operations come from `ClientMethods` / `AsyncClientMethods` (methods.py, generated
    from the plans); each subclass drives the plans with its `_run` and `_stream`.
    """

    _ctx: zmq.Context

    def __init__(self, ctx: zmq.Context, endpoint: str, curve: Any, timeout: float,
                 events_endpoint: str | None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._ctx = ctx
        self._curve = curve
        self._plans = Plans(events_endpoint, self.subscriber)
        self._sock, self._monitor = _dealer(ctx, endpoint, curve)
        self._link = Link(endpoint, curve=curve is not None)
        self._outstanding = Outstanding()

    def subscriber(self, endpoint: str) -> zmq.Socket:
        """A SUB socket on an events endpoint, subscribed to everything (an asyncio one for
        AsyncClient); the caller closes it."""
        sock = self._ctx.socket(zmq.SUB)
        sock.linger = 0
        sock.rcvhwm = 1_000_000
        if self._curve is not None:
            apply_client_curve(sock, self._curve)
        sock.setsockopt(zmq.SUBSCRIBE, b"")  # all topics: seq must be contiguous to see gaps
        for one in endpoint_list(endpoint):  # whichever broker is primary publishes
            sock.connect(one)
        return sock

    def _resend(self, skip: Container[bytes] = ()) -> None:
        """Send the reads in flight again (but those in `skip`): the broker came back."""
        for frames in self._outstanding.again(time.monotonic(), skip):
            try:
                send_frames(self._sock, frames)
            except zmq.Again:
                return  # lost again already: the next reconnect sends them

    def _limit(self, call: Call) -> float:
        """How long the answer to `call` may take."""
        return (self.timeout if call.timeout is None else call.timeout) + call.wait_s

    def _close_dealer(self) -> None:
        if self._sock.closed:  # closing twice is fine
            return
        self._sock.disable_monitor()
        self._monitor.close(linger=0)
        self._sock.close(linger=0)


class Client(_BaseClient, ClientMethods):
    """Blocking client; not thread-safe (use one per thread)."""

    def __init__(self, endpoint: str = DEFAULT_FRONTEND, *, curve: Any = None,
                 timeout: float = 10.0, events_endpoint: str | None = None) -> None:
        super().__init__(zmq.Context.instance(), endpoint, curve, timeout, events_endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._early: dict[bytes, p.ClientReply] = {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the sockets; closing twice is fine."""
        self._close_dealer()

    # ------------------------------------------------------------ driving plans

    def _run(self, plan: Plan[T]) -> T:
        return next(self._stream(returning(plan)))

    def _stream(self, plan: Stream[T]) -> Iterator[T]:
        steps = Steps(plan)
        for step in steps:
            if isinstance(step, Emit):
                yield step.item
            else:
                steps.reply = self._do(step)

    def _do(self, step: Call | Batch | Live) -> Any:
        if isinstance(step, Live):
            while not step.sub.poll(1000):
                pass
            return step.sub.recv_multipart()
        calls = step.calls if isinstance(step, Batch) else (step,)
        deadline = time.monotonic() + max(map(self._limit, calls), default=0)
        rids: list[bytes] = []
        try:
            for call in calls:  # all sent, then all read
                rids.append(self._send(call, deadline))
        except BrokerUnreachable as exc:
            if rids:  # some of the batch left: what became of it is unknown
                raise BrokerUnreachable(self.endpoint, exc.timeout_s, sent=True) from None
            raise
        replies = [self._recv(rid, max(deadline, time.monotonic() + self._limit(call)))
                   for rid, call in zip(rids, calls, strict=True)]
        return replies if isinstance(step, Batch) else replies[0]

    # ------------------------------------------------------------ transport

    def _send(self, call: Call, deadline: float) -> bytes:
        self._check_link()
        rid = self._outstanding.next_id()
        frames = p.encode_request(call.command, rid, call.body)
        while True:
            try:
                send_frames(self._sock, frames)
                break
            except zmq.Again:
                if time.monotonic() >= deadline:
                    raise BrokerUnreachable(self.endpoint, self._limit(call), sent=False) \
                        from None
                self._sock.poll(50, zmq.POLLOUT)
                self._check_link()
        self._outstanding.sent(rid, call.command, call.body, time.monotonic())
        return rid

    def _check_link(self) -> None:
        """Read the monitor: raise AuthError if the broker refused us, resend after a reconnect."""
        while (frames := recv_frames(self._monitor)) is not None:
            if self._link.note(frames):
                self._resend(skip=self._early)
        if self._link.refused is not None:
            raise AuthError(self._link.refused)

    def _recv(self, rid: bytes, deadline: float) -> Any:
        try:
            while rid not in self._early:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._poller.poll(math.ceil(remaining * 1000)):
                    if rid not in self._early and time.monotonic() >= deadline:
                        raise BrokerUnreachable(self.endpoint, self.timeout)
                    continue
                self._read_available()
                if rid not in self._early:
                    self._check_link()
            return _checked(self._early.pop(rid))
        finally:
            self._outstanding.answered(rid)

    def _read_available(self) -> None:
        while (frames := recv_frames(self._sock)) is not None:
            reply = _decoded(frames)
            if reply is not None and reply.request_id in self._outstanding:
                self._early[reply.request_id] = reply


class AsyncClient(_BaseClient, AsyncClientMethods):
    """asyncio client: the methods of `Client`, as coroutines. One reader task per client."""

    _sock: zmq.asyncio.Socket  # made by the asyncio context
    _monitor: zmq.asyncio.Socket

    if TYPE_CHECKING:  # the shared subscriber(), as the asyncio context makes it here
        def subscriber(self, endpoint: str) -> zmq.asyncio.Socket: ...

    def __init__(self, endpoint: str = DEFAULT_FRONTEND, *, curve: Any = None,
                 timeout: float = 10.0, events_endpoint: str | None = None) -> None:
        super().__init__(zmq.asyncio.Context.instance(), endpoint, curve, timeout,
                         events_endpoint)
        self._replies: dict[bytes, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None
        self._waits = WaitBatches()  # single-job WAITs, sent coalesced
        self._submits = SubmitBatches()  # single-job SUBMITs, likewise
        self._senders: set[asyncio.Task] = set()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the reader tasks and close the sockets; closing twice is fine."""
        await cancel_and_wait(self._reader)
        await cancel_and_wait(self._watcher)
        for sender in list(self._senders):
            await cancel_and_wait(sender)
        self._reader = self._watcher = None
        self._close_dealer()

    # ------------------------------------------------------------ driving plans

    async def _run(self, plan: Plan[T]) -> T:
        """Drive a call plan: a plain coroutine, no async generator per call."""
        reply = None
        try:
            while True:
                try:
                    step = plan.send(reply)
                except StopIteration as stop:
                    return stop.value
                reply = await (self._call(step) if step.__class__ is Call else self._do(step))
        finally:
            plan.close()

    async def _stream(self, plan: Stream[T]) -> AsyncGenerator[T, None]:
        steps = Steps(plan)
        for step in steps:
            if isinstance(step, Emit):
                yield step.item
            else:
                steps.reply = await self._do(step)

    async def _do(self, step: Call | Batch | Live) -> Any:
        if isinstance(step, Live):
            sub = cast(zmq.asyncio.Socket, step.sub)  # this client's subscriber() made it
            await sub.poll()
            return await sub.recv_multipart(zmq.NOBLOCK)
        if isinstance(step, Batch):  # every request is sent before the first reply is read
            return _batch_outcome(await asyncio.gather(*map(self._call, step.calls),
                                                       return_exceptions=True))
        return await self._call(step)

    # ------------------------------------------------------------ transport

    def _call(self, call: Call) -> Awaitable[Any]:
        """The reply to `call`, to await: a joined WAIT or SUBMIT is a future of its batch
        (no coroutine of its own: a `result()` per job costs one frame less), the rest a
        request of its own."""
        self._start_tasks()
        limit = self._limit(call)
        if call.command == p.WAIT and "id" in call.body:
            return self._join_wait(call.body, limit)
        if call.command == p.SUBMIT and "jobs" not in call.body and joinable(call.body):
            future = self._join_submit(call.body, limit)
            if self._submits.full():  # this part goes now: the broker starts on it at once
                self._spawn_now(self._send_submits(limit))
            return future
        return self._request(call, limit)

    async def _request(self, call: Call, limit: float) -> Any:
        """One request on its own, answered within `limit`."""
        rid = self._outstanding.next_id()
        future = asyncio.get_running_loop().create_future()
        self._replies[rid] = future
        sent = False
        try:
            async with asyncio.timeout(limit):
                await self._send(call, rid)
                sent = True
                reply = await future
        except TimeoutError:
            raise BrokerUnreachable(self.endpoint, limit, sent=sent) from None
        finally:
            self._replies.pop(rid, None)
            self._outstanding.answered(rid)
        return _checked(reply)

    def _join_wait(self, body: dict[str, Any], limit: float) -> asyncio.Future:
        """A single-job WAIT, joined to this tick's batch (broker.wait_batches)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._waits.add(body["id"], body.get("timeout", 0.0), future, body.get("fields")):
            self._spawn(self._send_waits(limit))
        return future

    def _join_submit(self, job: dict[str, Any], limit: float) -> asyncio.Future:
        """A single-job SUBMIT, joined to this tick's batch (broker.submit_batches)."""
        future = asyncio.get_running_loop().create_future()
        if self._submits.add(job, future):
            self._spawn(self._send_submits(limit))
        return future

    def _spawn_now(self, coroutine: Any) -> None:
        """Run `coroutine` now, up to where it first waits (a send that does not block never
        does), and the rest of it as a task."""
        try:
            waiting = coroutine.send(None)
        except StopIteration:
            return
        self._spawn(_resumed(coroutine, waiting))

    def _spawn(self, coroutine: Any) -> None:
        sender = asyncio.get_running_loop().create_task(coroutine)
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)

    async def _send_waits(self, limit: float) -> None:
        for (timeout, fields), waits in self._waits.take():
            rid = self._outstanding.next_id()
            self._waits.sent(rid, waits)
            body = {"ids": list(waits), "timeout": timeout, "each": True}
            if fields is not None:
                body["fields"] = fields
            await self._send_batch(Call(p.WAIT, body), rid, limit, self._waits.fail)

    async def _send_submits(self, limit: float) -> None:
        for batch in self._submits.take():
            rid = self._outstanding.next_id()
            self._submits.sent(rid, batch)
            call = Call(p.SUBMIT, {"jobs": [job for job, _ in batch]})
            await self._send_batch(call, rid, limit, self._submits.fail)

    async def _send_batch(self, call: Call, rid: bytes, limit: float,
                          fail: Callable[[bytes, BaseException], None]) -> None:
        """Send a coalesced request; its futures fail if no answer comes within `limit`
        (one timer for the batch, not one per job)."""
        try:
            await self._send(call, rid)
        except Exception as exc:  # AuthError: every job of the batch gets it
            fail(rid, exc)
            return
        loop = asyncio.get_running_loop()
        loop.call_later(limit + call.wait_s, self._expire, rid, limit, fail)

    def _expire(self, rid: bytes, limit: float,
                fail: Callable[[bytes, BaseException], None]) -> None:
        if rid in self._waits or rid in self._submits:
            self._outstanding.answered(rid)
            fail(rid, BrokerUnreachable(self.endpoint, limit))

    def _resubmit(self, batch: list[tuple[dict[str, Any], asyncio.Future]]) -> None:
        """A refused batch kept nothing: each job again, alone, for its own answer."""
        async def alone(job: dict[str, Any], future: asyncio.Future) -> None:
            try:
                call = Call(p.SUBMIT, job)
                future.set_result(await self._request(call, self._limit(call)))
            except Exception as exc:  # BrokerError, BrokerUnreachable: this job's answer
                if not future.done():
                    future.set_exception(exc)

        for job, future in batch:
            self._spawn(alone(job, future))

    async def _send(self, call: Call, rid: bytes) -> None:
        frames = p.encode_request(call.command, rid, call.body)
        while True:
            if self._link.refused is not None:
                raise AuthError(self._link.refused)
            try:
                await self._sock.send_multipart(frames, zmq.NOBLOCK)
                break
            except zmq.Again:
                await asyncio.sleep(0.05)
        self._outstanding.sent(rid, call.command, call.body, time.monotonic())

    def _start_tasks(self) -> None:
        loop = asyncio.get_running_loop()
        if self._reader is None:
            self._reader = loop.create_task(self._read_replies())
        if self._watcher is None:
            self._watcher = loop.create_task(self._watch_link())

    async def _read_replies(self) -> None:
        async for frames in received(self._sock):
            reply = _decoded(frames)
            if reply is not None and reply.request_id in self._waits:
                if self._waits.part(reply.request_id, reply.ok, reply.body):
                    self._outstanding.answered(reply.request_id)
                continue
            if reply is not None and reply.request_id in self._submits:
                self._outstanding.answered(reply.request_id)
                self._resubmit(self._submits.answered(reply.request_id, reply.ok, reply.body))
                continue
            future = None if reply is None else self._replies.pop(reply.request_id, None)
            if future is not None and not future.done():
                future.set_result(reply)

    async def _watch_link(self) -> None:
        """Fail pending calls when the broker refuses our key; resend reads after a reconnect."""
        async for frames in received(self._monitor):
            back = self._link.note(frames)
            if self._link.refused is not None:
                for future in self._replies.values():
                    if not future.done():
                        future.set_exception(AuthError(self._link.refused))
                self._waits.fail_all(AuthError(self._link.refused))
            elif back:
                self._resend()


async def _resumed(coroutine: Any, waiting: Any) -> None:
    """Go on with a coroutine started by hand (`_spawn_now`) where it waits for `waiting` (an
    asyncio future, or None: a bare yield), as its task would have."""
    while True:
        if waiting is not None:
            await asyncio.wait([waiting])
        else:
            await asyncio.sleep(0)
        try:
            waiting = coroutine.send(None)
        except StopIteration:
            return
