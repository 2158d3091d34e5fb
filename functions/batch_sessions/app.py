"""Reading batches: `GET /batch/sessions` (contract 2.2) pages a batch's sessions with their first events;
`GET /batch` and `GET /batches` (contract 7.4) show a batch, its dataset and its quality report; `GET /batch/report`
(contract 16) is the exported batch's report page."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from clickstream.api import (
    build_resolver,
    digits_query,
    error_responses,
    json_response,
    lambda_entry,
    log_keys,
    ok_response,
)
from clickstream.models import PRINTABLE, BatchPage
from clickstream.reports import BatchList, BatchView
from clickstream.runtime import get_service

app = build_resolver()

BatchId = Annotated[
    str, Query(min_length=1, max_length=256, pattern=PRINTABLE, examples=["b-1700000000000-0123456789ab"])
]


@app.get(
    "/batch/sessions",
    summary="Sessions of a batch after a number, ascending, with their first events",
    responses={**ok_response(BatchPage), **error_responses(404, 422, 503)},
)
def batch_sessions(
    batch_id: BatchId,
    after_number: Annotated[int, digits_query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, digits_query(ge=1, le=1000)] = 10,
    events_limit: Annotated[int, digits_query(ge=0, le=1000)] = 100,
) -> Response[Any]:
    log_keys(batch_id=batch_id)
    page = get_service().batch_page_json(batch_id, after_number, limit, events_limit)
    return json_response(200, page)


@app.get(
    "/batch",
    summary="A batch: collecting or released, its session count, its dataset and its quality report",
    responses={**ok_response(BatchView), **error_responses(404, 422, 503)},
)
def batch(batch_id: BatchId) -> BatchView:
    log_keys(batch_id=batch_id)
    return get_service().batch(batch_id)


# The page is self-contained; the header repeats its own policy for browsers that open it from the API.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
}


@app.get(
    "/batch/report",
    summary="The exported batch's report page (HTML): metrics, charts, experiments, trend",
    responses={
        200: {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}},
        **error_responses(404, 422, 503),
    },
)
def batch_report(batch_id: BatchId) -> Response[Any]:
    log_keys(batch_id=batch_id)
    page = get_service().report_page(batch_id)
    return Response(200, content_type="text/html; charset=utf-8", body=page.decode("utf-8"), headers=PAGE_HEADERS)


@app.get(
    "/batches",
    summary="Batches, newest first (the collecting one first); `next` continues as `before`",
    responses={**ok_response(BatchList), **error_responses(422, 503)},
)
def batches(
    limit: Annotated[int, digits_query(ge=1, le=100)] = 20,
    before: Annotated[
        str | None, Query(min_length=1, max_length=256, pattern=PRINTABLE, examples=["b-1700000000000-0123456789ab"])
    ] = None,
) -> BatchList:
    return get_service().list_batches(limit, before)


lambda_handler = lambda_entry(app)
