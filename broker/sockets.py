"""Socket helpers: sending without pyzmq's per-frame flag-enum arithmetic (it showed up in
profiles), receiving on asyncio sockets without ever cancelling a pending recv()."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import zmq
import zmq.asyncio

MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
NOBLOCK = int(zmq.NOBLOCK)


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
    send = sock.send
    for frame in frames[:-1]:
        send(frame, MORE)
    send(frames[-1], NOBLOCK)


async def received(sock: zmq.asyncio.Socket) -> AsyncIterator[list[bytes]]:
    """Every message of an asyncio socket, forever.

    Poll, then receive without blocking: cancelling a pending `recv()` can
    lose a message, cancelling a `poll()` cannot. The receives go through a
    plain (shadow) socket: a non-blocking receive on the asyncio socket makes
    a future per message, a quarter of the API's time in a burst of events.
    """
    reader = zmq.Socket.shadow(sock.underlying)
    while True:
        await sock.poll()
        while True:
            try:
                frames = reader.recv_multipart(NOBLOCK)
            except zmq.Again:
                break
            yield frames


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel a background task and wait until it has ended."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
