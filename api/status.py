"""Cluster status routes: /workers, /queues, /stats and /health."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import Response

from zjobs.api.context import context
from zjobs.api.errors import error_body
from zjobs.api.render import Json, worker_json
from zjobs.broker.wire.errors import BrokerError


async def list_workers(request: Request) -> Response:
    workers = await context(request).client.workers()
    return Json({"workers": [worker_json(w) for w in workers]})


async def get_worker(request: Request) -> Response:
    """One live worker; 404 if no worker of that name is connected."""
    workers = await context(request).client.workers(request.path_params["name"])
    return Json(worker_json(workers[0]))


async def queues(request: Request) -> Response:
    stats = await context(request).client.stats()
    return Json({"queues": stats["queues"]})


async def stats(request: Request) -> Response:
    """The broker's STATS with its throughput history, plus the API's own event counters
    under `api`."""
    ctx = context(request)
    body = await ctx.client.stats_with_history()
    body["api"] = {**ctx.hub.stats.as_dict(), "last_seq": ctx.hub.last_seq,
                   "sse_clients": ctx.hub.subscribers}
    return Json(body)


async def health(request: Request) -> Response:
    """200 when the broker answers PING within the health timeout, 503 otherwise.

    `broker.reachable` / `broker.since` say since when the broker has (not) answered,
    from the API's own pings every second, so the dashboard can say how long it has been.
    """
    ctx = context(request)
    api = {"last_seq": ctx.hub.last_seq, "sse_clients": ctx.hub.subscribers,
           "pid": os.getpid()}  # which process answered, under --api-workers
    pong = await ctx.reachability.ping(ctx.client, ctx.settings.health_timeout_s)
    broker = ctx.reachability.as_dict()
    if pong is None:
        body = {"status": "unavailable", "broker": broker, "api": api,
                **error_body("unavailable", f"the broker at {ctx.settings.frontend} did not "
                             f"answer within {ctx.settings.health_timeout_s:g} s")}
        return Json(body, status_code=503)
    broker.update(version=pong.get("version"), seq=pong.get("seq"))
    return Json({"status": "ok", "broker": broker, "api": api})


async def metrics(request: Request) -> Response:
    """Prometheus text format; broker gauges are absent (and zjobs_broker_up 0) if it is down."""
    ctx = context(request)
    broker_stats = None
    if ctx.reachability.reachable is not False:  # known down: say so at once, as other routes
        try:
            broker_stats = await ctx.client.stats()
        except (TimeoutError, BrokerError):
            pass
    return Response(ctx.metrics.render(broker_stats),
                    media_type="text/plain; version=0.0.4; charset=utf-8")
