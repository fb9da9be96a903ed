"""Socket helpers: sending and receiving without pyzmq's per-frame flag-enum arithmetic and
Python wrappers (they showed up in profiles), receiving on asyncio sockets without ever
cancelling a pending recv()."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import zmq
import zmq.asyncio

MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
NOBLOCK = int(zmq.NOBLOCK)
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
# pyzmq's own send and recv, without the Python wrapper of zmq.Socket.send (routing_id, group),
# which costs as much as the send itself on a small frame.
_send, _recv = zmq.backend.Socket.send, zmq.backend.Socket.recv


def endpoint_list(endpoints: str) -> list[str]:
    """`tcp://a:5556,tcp://b:5556` as a list: a primary broker and its standbys."""
    found = [e.strip() for e in endpoints.split(",") if e.strip()]
    if not found:
        raise ValueError(f"no endpoint in {endpoints!r}")
    return found


def send_frames(sock: zmq.Socket, frames: list[bytes]) -> None:
    """send_multipart without blocking; a multipart message is queued whole or not at all.

    Raises zmq.Again (high-water mark) or zmq.ZMQError (e.g. EHOSTUNREACH from a
    ROUTER_MANDATORY socket) before anything of the message is queued.
    """
    for frame in frames[:-1]:
        _send(sock, frame, MORE)
    _send(sock, frames[-1], NOBLOCK)


def recv_frames(sock: zmq.Socket) -> list[bytes] | None:
    """One message of a (plain) socket without blocking, or None if none is waiting.

    Checks EVENTS rather than catching zmq.Again, whose exception costs more than a
    message, and reads frames with copy=False because a frame knows whether more follow:
    asking the socket for RCVMORE builds a pyzmq option enum on every call.
    """
    # pyzmq's stubs type get() for every option (int | bytes); EVENTS is an int
    if not sock.get(_EVENTS) & _POLLIN:  # type: ignore[operator]
        return None
    frame = _recv(sock, NOBLOCK, False)
    frames = [frame.bytes]
    while frame.more:
        frame = _recv(sock, NOBLOCK, False)
        frames.append(frame.bytes)
    return frames


async def received(sock: zmq.asyncio.Socket) -> AsyncIterator[list[bytes]]:
    """Every message of an asyncio socket, forever.

    Poll, then receive without blocking: cancelling a pending `recv()` can
    lose a message, cancelling a `poll()` cannot. The receives go through a
    plain (shadow) socket: a non-blocking receive on the asyncio socket makes
    a future per message, a quarter of the API's time in a burst of events.
    """
    reader: zmq.Socket = zmq.Socket.shadow(sock.underlying)
    while True:
        await sock.poll()
        while (frames := recv_frames(reader)) is not None:
            yield frames


async def readable(sock: zmq.Socket, timeout_s: float) -> bool:
    """Whether a plain socket has a message, waiting up to `timeout_s` in the event loop.

    The socket's FD goes in the loop's selector for the wait (`add_reader`), and EVENTS is
    asked on each wake-up: ZeroMQ's FD signals that something changed, not that a message
    is there, and stays readable until EVENTS is read. zmq.asyncio's `poll()` does the same
    through a poller, futures and timers of its own: an idle worker woke ~0.08 ms later
    with it (bench/PROFILE.md, round eight), on every job of a `run()`.
    """
    if sock.get(_EVENTS) & _POLLIN:  # type: ignore[operator]
        return True
    loop = asyncio.get_running_loop()
    fd = int(sock.get(zmq.FD))
    end = loop.time() + timeout_s
    while True:
        woke = loop.create_future()
        loop.add_reader(fd, _wake, woke)
        timer = loop.call_at(end, _wake, woke)
        try:
            await woke
        finally:
            loop.remove_reader(fd)
            timer.cancel()
        if sock.get(_EVENTS) & _POLLIN:  # type: ignore[operator]
            return True
        if loop.time() >= end:
            return False


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel a background task and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
