"""Improvement tasks (contract 2.1, 12): `POST /session/use-for-improvement` schedules a useful session,
`POST /improvement/tasks/complete` takes its worker's report, `GET /improvement/tasks` lists tasks oldest
first for workers that poll instead of reading the queue."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from clickstream.api import (
    build_resolver,
    digits_query,
    error_responses,
    json_response,
    lambda_entry,
    log_keys,
    ok_response,
)
from clickstream.models import ImprovementDecision, ImprovementTask, SessionRef, TaskCompletion, TaskList
from clickstream.records import TASK_CURSOR_PATTERN
from clickstream.runtime import get_service

app = build_resolver()


@app.post(
    "/session/use-for-improvement",
    summary="Schedule a session for model improvement, skipping payload searches and sessions without events",
    responses={**ok_response(ImprovementDecision), **error_responses(400, 404, 409, 413, 415, 422, 503)},
)
def use_for_improvement(request: Annotated[SessionRef, Body()]) -> Response[Any]:
    log_keys(session_id=request.session_id)
    decision = get_service().use_for_improvement(request.session_id).model_dump()
    # "skipped" carries a reason and no task; "scheduled" a task (completed_at null) and no reason.
    return json_response(200, {key: value for key, value in decision.items() if value is not None})


@app.post(
    "/improvement/tasks/complete",
    summary="Report a session's task done or failed (idempotent); the session may then be scheduled again",
    responses={**ok_response(ImprovementTask), **error_responses(400, 404, 409, 413, 415, 422, 503)},
)
def complete_task(request: Annotated[TaskCompletion, Body()]) -> ImprovementTask:
    log_keys(session_id=request.session_id)
    return get_service().complete_task(request)


@app.get(
    "/improvement/tasks",
    summary="Tasks of a status, oldest first; `next` continues as `after`",
    responses={**ok_response(TaskList), **error_responses(422, 503)},
)
def tasks(
    status: Annotated[Literal["pending", "done", "failed"], Query()] = "pending",
    limit: Annotated[int, digits_query(ge=1, le=1000)] = 100,
    after: Annotated[
        str | None,
        Query(max_length=46, pattern=TASK_CURSOR_PATTERN, examples=["1700000000000#9f86d081884c7d659a2feaa0c55ad015"]),
    ] = None,
) -> TaskList:
    return get_service().tasks(status, limit, after)


lambda_handler = lambda_entry(app)
