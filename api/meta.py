"""GET /meta: the facts a client of the API builds on, read from their one definitions.

The dashboard reads them when it starts instead of keeping copies of its own: the job states
(which of them end a job, which can run again, which a purge cancels), the event types and
the event that announces each state, the bounds a request can hit, and the version. They are
the answering API's own, so a page always matches the API that serves it. None of them needs
the broker: /meta answers while it is down, as the page that shows the outage needs it to.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from zjobs.api.context import context
from zjobs.api.render import Json
from zjobs.broker.wire import limits as lim
from zjobs.broker.wire.jobs import RETRYABLE, TERMINAL, WAITING
from zjobs.broker.wire.schema import STATE_EVENTS, STATES, SUBMITTED, EventType
from zjobs.broker.wire.version import __version__

Number = int | float


class Bounds(BaseModel):
    """One limit: a number's default and range, or the most characters (a text) or items (a
    list) a value may have. Only what applies is present."""

    model_config = ConfigDict(extra="forbid")

    default: Number | None = None
    min: Number | None = None
    min_exclusive: bool | None = Field(None, description="true: `min` itself is refused")
    max: Number | None = None
    max_len: int | None = Field(None, description="characters of a text, items of a list")


class Limits(BaseModel):
    list_limit: Bounds = Field(description="`GET /jobs` `?limit=`: the jobs of one page")
    result_wait_s: Bounds = Field(description="`GET /jobs/{id}/result` `?wait=`, in seconds")
    body_bytes: Bounds = Field(description="a request body, in bytes (`--max-message`)")
    data_nesting: Bounds = Field(description="the levels `args`, `kwargs` and an exec "
                                             "`spec` may nest")
    fields: dict[str, Bounds] = Field(description="a submitted job's fields, by name")


class Meta(BaseModel):
    """`GET /meta`."""

    version: str = Field(description="the API's zjobs version")
    states: list[str] = Field(description="every job state, in lifecycle order")
    terminal: list[str] = Field(description="the states a job ends in")
    retryable: list[str] = Field(description="the ended states a retry runs again from")
    purgeable: list[str] = Field(description="the waiting states a queue's purge cancels")
    event_types: list[str] = Field(description="every event type the broker publishes")
    state_events: dict[str, str] = Field(description="state -> the event that announces a "
                                                     "job entering it, where one does")
    limits: Limits


PARSED_FIELDS = {  # submitted fields checked by a parser of their own, not by their bounds
    "run_at": Bounds(min=lim.RUN_AT_MIN, max=lim.RUN_AT_MAX),
    "depends_on": Bounds(max_len=lim.DEPENDS_ON_MAX),
}


def _in_order(states: frozenset[str]) -> list[str]:
    return [state for state in STATES if state in states]


def field_bounds() -> dict[str, Bounds]:
    """The bounds of every submitted field that has some, from the job's schema."""
    bounds = {}
    for field in SUBMITTED:
        if field.low is not None or field.max_len is not None:
            default = field.default if isinstance(field.default, int | float) else None
            bounds[field.name] = Bounds(default=default, min=field.low, max=field.high,
                                        min_exclusive=field.low_open or None,
                                        max_len=field.max_len)
    return {**bounds, **PARSED_FIELDS}


@lru_cache(maxsize=4)
def facts(max_body: int) -> dict[str, Any]:
    """The body of GET /meta for an API whose request bodies may have `max_body` bytes."""
    limits = Limits(
        list_limit=Bounds(default=lim.LIST_DEFAULT, min=1, max=lim.LIST_MAX),
        result_wait_s=Bounds(default=0, min=0, max=lim.WAIT_MAX_S),
        body_bytes=Bounds(max=max_body),
        data_nesting=Bounds(max=lim.MAX_NESTING),
        fields=field_bounds(),
    )
    meta = Meta(version=__version__, states=list(STATES), terminal=_in_order(TERMINAL),
                retryable=_in_order(RETRYABLE), purgeable=_in_order(WAITING),
                event_types=[str(kind) for kind in EventType],
                state_events={str(state): str(kind) for state, kind in STATE_EVENTS.items()},
                limits=limits)
    return meta.model_dump(exclude_none=True)


async def meta(request: Request) -> Response:
    """The facts, from the one definitions in `broker.schema`, `broker.jobs` and the limits."""
    return Json(facts(context(request).settings.max_body))
