"""Collection API (contract 3): register sessions, add events, mark irrelevant, read a session."""

from __future__ import annotations

from typing import Annotated, Any

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
from clickstream.models import (
    PRINTABLE,
    EventsAdded,
    IrrelevantMark,
    NewEvents,
    NewSession,
    Registration,
    SessionRef,
    SessionWithBatch,
)
from clickstream.runtime import get_service

app = build_resolver()


@app.post(
    "/session",
    summary="Register a search session in the collecting batch",
    responses={**ok_response(Registration), **error_responses(400, 409, 413, 415, 422, 503)},
)
def register_session(session: Annotated[NewSession, Body()]) -> Registration:
    log_keys(session_id=session.session_id)
    return get_service().register(session)


@app.post(
    "/session/events",
    summary="Add events (clicks, ...) to a session; event_ids already stored are ignored",
    responses={**ok_response(EventsAdded), **error_responses(400, 404, 409, 413, 415, 422, 503)},
)
def add_events(request: Annotated[NewEvents, Body()]) -> EventsAdded:
    log_keys(session_id=request.session_id)
    return get_service().add_events(request.session_id, list(request.events))


@app.post(
    "/session/irrelevant",
    summary="Mark a session irrelevant (a useful negative example)",
    responses={**ok_response(IrrelevantMark), **error_responses(400, 404, 409, 413, 415, 422, 503)},
)
def mark_irrelevant(request: Annotated[SessionRef, Body()]) -> IrrelevantMark:
    log_keys(session_id=request.session_id)
    return get_service().mark_irrelevant(request.session_id)


@app.get(
    "/session",
    summary="Read one session with its first events",
    responses={**ok_response(SessionWithBatch), **error_responses(404, 422, 503)},
)
def get_session(
    session_id: Annotated[str, Query(min_length=1, max_length=256, pattern=PRINTABLE, examples=["sess-abc123"])],
    events_limit: Annotated[int, digits_query(ge=0, le=1000)] = 1000,
) -> Response[Any]:
    log_keys(session_id=session_id)
    return json_response(200, get_service().session_json(session_id, events_limit))


lambda_handler = lambda_entry(app)
