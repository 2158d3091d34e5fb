"""`GET /batch/sessions` (contract 2.2): page through the sessions of a batch with their first events."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from clickstream.api import build_resolver, error_responses, json_response, lambda_entry, log_keys, ok_response
from clickstream.models import PRINTABLE, BatchPage
from clickstream.observability import tracer
from clickstream.runtime import get_service

app = build_resolver()


@app.get(
    "/batch/sessions",
    summary="Sessions of a batch after a number, ascending, with their first events",
    responses={**ok_response(BatchPage), **error_responses(404, 422, 503)},
)
@tracer.capture_method
def batch_sessions(
    batch_id: Annotated[
        str, Query(min_length=1, max_length=256, pattern=PRINTABLE, examples=["b-1700000000000-0123456789ab"])
    ],
    after_number: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    events_limit: Annotated[int, Query(ge=0, le=1000)] = 100,
) -> Response[Any]:
    log_keys(batch_id=batch_id)
    page = get_service().batch_page_json(batch_id, after_number, limit, events_limit)
    return json_response(200, page)


lambda_handler = lambda_entry(app)
