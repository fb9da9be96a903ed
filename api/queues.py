"""The /queues/{name} routes: change a queue's settings, purge its waiting jobs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from zjobs.api.bodies import json_object
from zjobs.api.context import context
from zjobs.api.render import Json
from zjobs.api.schemas import QueuePatch


async def configure_queue(request: Request) -> Response:
    """`{"paused": bool}` and/or `{"rate_limit": n}` (0 or null removes the limit); 200 with
    the queue's settings. A queue not seen before gets them (queues exist on first use)."""
    patch = QueuePatch.model_validate(await json_object(request))
    rate = patch.rate_limit
    if "rate_limit" in patch.model_fields_set and rate is None:
        rate = 0.0  # null: no limit
    settings = await context(request).client.configure_queue(
        request.path_params["name"], paused=patch.paused, rate_limit=rate)
    return Json(settings)


async def purge_queue(request: Request) -> Response:
    """Cancel every queued or scheduled job of the queue: `{"cancelled": n}`."""
    cancelled = await context(request).client.purge(request.path_params["name"])
    return Json({"cancelled": cancelled})
