"""`readable`: an event loop's wait on a plain ZeroMQ socket (the async worker's wait)."""

from __future__ import annotations

import asyncio
import time

import zmq

from zjobs.broker.wire.sockets import readable, recv_frames


def _pair() -> tuple[zmq.Context, zmq.Socket, zmq.Socket]:
    ctx = zmq.Context()
    server, client = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    client.connect(f"tcp://127.0.0.1:{port}")
    return ctx, server, client


def test_a_message_that_comes_during_the_wait_ends_it_and_the_loop_runs_meanwhile() -> None:
    ctx, server, client = _pair()
    try:
        async def main() -> tuple[bool, int, float]:
            ticks = 0

            async def ticker() -> None:  # the loop runs while the socket waits: the message
                nonlocal ticks  # is sent from it, after five turns
                while True:
                    ticks += 1
                    if ticks == 5:
                        client.send_multipart([b"hello"])
                    await asyncio.sleep(0.01)

            tick = asyncio.ensure_future(ticker())
            started = time.monotonic()
            got = await readable(server, 10.0)
            waited = time.monotonic() - started
            tick.cancel()
            return got, ticks, waited

        got, ticks, waited = asyncio.run(main())
        assert got is True
        assert waited < 5.0  # woken by the message, not by the 10 s timeout
        assert ticks >= 5
        frames = recv_frames(server)
        assert frames is not None and frames[1:] == [b"hello"]
    finally:
        server.close(0)
        client.close(0)
        ctx.term()


def test_it_says_false_after_its_timeout_and_true_for_a_message_already_there() -> None:
    ctx, server, client = _pair()
    try:
        async def main() -> tuple[bool, float, bool]:
            started = time.monotonic()
            empty = await readable(server, 0.1)
            waited = time.monotonic() - started
            client.send_multipart([b"a"])
            client.send_multipart([b"b"])
            # the first message's arrival may be signalled once for both: the second is still
            # found after the first is read (ZeroMQ's FD is an edge, EVENTS the truth)
            first = await readable(server, 10.0)
            assert recv_frames(server) is not None
            second = await readable(server, 10.0)
            return empty, waited, first and second

        empty, waited, both = asyncio.run(main())
        assert empty is False
        assert 0.09 <= waited < 5.0
        assert both
        assert recv_frames(server) is not None
        assert recv_frames(server) is None
    finally:
        server.close(0)
        client.close(0)
        ctx.term()
