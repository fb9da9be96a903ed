"""The app factory: settings, lifespan, middleware, error handlers and the routes table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from zjobs.api import jobs, meta, openapi, pages, queues, schedules, status, streams
from zjobs.api.auth import TokenAuth
from zjobs.api.context import STATIC_DIR, ApiContext, Settings
from zjobs.api.errors import HANDLERS
from zjobs.api.hub import DEFAULT_QUEUE_SIZE
from zjobs.api.limits import BodyLimit
from zjobs.api.reachability import BrokerGate
from zjobs.broker.wire.settings import default


def routes(static_dir: Path) -> list[BaseRoute]:
    """Every REST and SSE route, plus the docs and static files."""
    return [
        Route("/jobs", jobs.submit, methods=["POST"]),
        Route("/jobs", jobs.list_jobs, methods=["GET"]),
        Route("/jobs/retry", jobs.retry_all, methods=["POST"]),
        Route("/jobs/{job_id}", jobs.get_job, methods=["GET"]),
        Route("/jobs/{job_id}/cancel", jobs.cancel_job, methods=["POST"]),
        Route("/jobs/{job_id}/retry", jobs.retry_job, methods=["POST"]),
        Route("/jobs/{job_id}/result", jobs.job_result, methods=["GET"]),
        Route("/jobs/{job_id}/logs", jobs.job_logs, methods=["GET"]),
        Route("/jobs/{job_id}/logs/stream", streams.job_log_stream, methods=["GET"]),
        Route("/jobs/{job_id}/events", streams.job_events, methods=["GET"]),
        Route("/jobs/{job_id}/artifacts", jobs.list_artifacts, methods=["GET"]),
        Route("/jobs/{job_id}/artifacts/{name:path}", jobs.get_artifact, methods=["GET"]),
        Route("/schedules", schedules.list_schedules, methods=["GET"]),
        Route("/schedules/{name}", schedules.put_schedule, methods=["PUT"]),
        Route("/schedules/{name}", schedules.get_schedule, methods=["GET"]),
        Route("/schedules/{name}", schedules.delete_schedule, methods=["DELETE"]),
        Route("/events", streams.events, methods=["GET"]),
        Route("/events/workers/{name}", streams.worker_events, methods=["GET"]),
        Route("/workers", status.list_workers, methods=["GET"]),
        Route("/workers/{name}", status.get_worker, methods=["GET"]),
        Route("/queues", status.queues, methods=["GET"]),
        Route("/queues/{name}", queues.configure_queue, methods=["PATCH"]),
        Route("/queues/{name}/purge", queues.purge_queue, methods=["POST"]),
        Route("/stats", status.stats, methods=["GET"]),
        Route("/health", status.health, methods=["GET"]),
        Route("/metrics", status.metrics, methods=["GET"]),
        Route("/meta", meta.meta, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/docs", openapi.docs, methods=["GET"]),
        Route("/", pages.dashboard, methods=["GET"]),
        Mount("/static", pages.Assets(directory=static_dir, check_dir=False), name="static"),
    ]


def create_app(frontend: str, events: str, *, token: str | None = None, curve: Any = None,
               max_body: int = default("max_message"), sse_ping_s: float = default("sse_ping"),
               broker_timeout_s: float = default("api_broker_timeout"),
               queue_size: int = DEFAULT_QUEUE_SIZE, static_dir: Path = STATIC_DIR,
               body_timeout_s: float = default("api_body_timeout")) -> Starlette:
    """The API for the broker at `frontend` and its events at `events` (the other defaults
    are the settings table's)."""
    settings = Settings(frontend=frontend, events=events, token=token or None, curve=curve,
                        max_body=max_body, sse_ping_s=sse_ping_s,
                        broker_timeout_s=broker_timeout_s, queue_size=queue_size,
                        static_dir=static_dir, body_timeout_s=body_timeout_s)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx = ApiContext(settings)
        app.state.ctx = ctx
        ctx.start()
        try:
            yield
        finally:
            await ctx.close()

    middleware = [
        Middleware(TokenAuth, token=settings.token),
        Middleware(BrokerGate, frontend=settings.frontend),
        Middleware(BodyLimit, max_body=settings.max_body, timeout_s=settings.body_timeout_s),
    ]
    return Starlette(routes=routes(static_dir), middleware=middleware,
                     exception_handlers=HANDLERS, lifespan=lifespan)
