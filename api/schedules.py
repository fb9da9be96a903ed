"""The /schedules routes: create or replace, list, inspect and remove periodic jobs.

The model (`ScheduleIn`) and then the broker check a schedule (the cron
expression with its parser and that some date matches it, `every_s` from 1 s
to a year, exactly one of them, the job as a submitted one); what they refuse
comes back as 422 with its message.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from zjobs.api.bodies import json_body
from zjobs.api.context import context
from zjobs.api.errors import ApiError
from zjobs.api.render import Json, schedule_json
from zjobs.api.schemas import ScheduleIn


def _name(request: Request) -> str:
    return request.path_params["name"]


async def put_schedule(request: Request) -> Response:
    """Create or replace the schedule; 200 with it."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(422, "body: must be a JSON object, a schedule")
    spec = ScheduleIn.model_validate(body).model_dump(exclude_none=True)
    return Json(schedule_json(await context(request).client.schedule_put(_name(request), spec)))


async def list_schedules(request: Request) -> Response:
    found = await context(request).client.schedules()
    return Json({"schedules": [schedule_json(s) for s in found]})


async def get_schedule(request: Request) -> Response:
    return Json(schedule_json(await context(request).client.get_schedule(_name(request))))


async def delete_schedule(request: Request) -> Response:
    await context(request).client.unschedule(_name(request))
    return Response(status_code=204)
