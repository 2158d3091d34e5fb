"""`POST /session/use-for-improvement` (contract 2.1): schedule a useful session for model improvement."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from clickstream.api import build_resolver, error_responses, json_response, lambda_entry, log_keys, ok_response
from clickstream.models import ImprovementDecision, SessionRef
from clickstream.observability import tracer
from clickstream.runtime import get_service

app = build_resolver()


@app.post(
    "/session/use-for-improvement",
    summary="Schedule a session for model improvement, skipping payload searches and sessions without events",
    responses={**ok_response(ImprovementDecision), **error_responses(400, 404, 409, 413, 415, 422, 503)},
)
@tracer.capture_method
def use_for_improvement(request: Annotated[SessionRef, Body()]) -> Response[Any]:
    log_keys(session_id=request.session_id)
    decision = get_service().use_for_improvement(request.session_id)
    # "skipped" carries a reason and no task; "scheduled" a task and no reason.
    return json_response(200, decision.model_dump(exclude_none=True))


lambda_handler = lambda_entry(app)
