"""Erasure requests (contract 17.3): `POST /user/erase` asks for a user to be erased everywhere (the erasure
state machine does it), `GET /erasure` shows how far it got. Nothing here logs or traces the user id."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from clickstream.api import build_resolver, error_responses, json_response, lambda_entry, log_keys, ok_response
from clickstream.erasure_models import ERASURE_ID_EXAMPLE, EraseRequest, ErasureRequested, ErasureView
from clickstream.fields import PRINTABLE
from clickstream.runtime import get_service

app = build_resolver()


@app.post(
    "/user/erase",
    summary="Erase a user's sessions, events, tasks and dataset lines; the same erasure while one is open",
    responses={
        **ok_response(ErasureRequested, "Accepted: the erasure runs (GET /erasure shows it)", status=202),
        **error_responses(400, 413, 415, 422, 503),
    },
)
def erase_user(request: Annotated[EraseRequest, Body()]) -> Response[Any]:
    # Who asks, as IAM authorized them: calls to the API's routes are not in CloudTrail, so the record keeps it.
    requested_by = app.current_event.request_context.authorizer.iam.user_arn or None
    erasure = get_service().erase_user(request.user_id, requested_by)
    log_keys(erasure_id=erasure.erasure_id)  # the id only: the user's is never logged
    return json_response(202, erasure.model_dump())


@app.get(
    "/erasure",
    summary="An erasure's status and what it erased so far (never the user id)",
    responses={**ok_response(ErasureView), **error_responses(404, 422, 503)},
)
def erasure(
    erasure_id: Annotated[str, Query(min_length=1, max_length=256, pattern=PRINTABLE, examples=[ERASURE_ID_EXAMPLE])],
) -> ErasureView:
    log_keys(erasure_id=erasure_id)
    return get_service().erasure(erasure_id)


lambda_handler = lambda_entry(app)
