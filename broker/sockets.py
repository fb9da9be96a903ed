"""Sending frames without pyzmq's per-frame flag-enum arithmetic (it showed up in profiles)."""

from __future__ import annotations

import zmq

MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
NOBLOCK = int(zmq.NOBLOCK)


def send_frames(sock: zmq.Socket, frames: list[bytes]) -> None:
    """send_multipart without blocking; a multipart message is queued whole or not at all.

    Raises zmq.Again (high-water mark) or zmq.ZMQError (e.g. EHOSTUNREACH from a
    ROUTER_MANDATORY socket) before anything of the message is queued.
    """
    send = sock.send
    for frame in frames[:-1]:
        send(frame, MORE)
    send(frames[-1], NOBLOCK)
