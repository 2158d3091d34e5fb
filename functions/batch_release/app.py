"""`POST /batch/release` (contract 2.3), also invoked directly by Step Functions with `{"release_id": ...}`."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from clickstream.api import build_resolver, error_responses, lambda_entry, log_keys, ok_response
from clickstream.models import Release, ReleaseRequest
from clickstream.observability import logger, metrics, tracer
from clickstream.runtime import get_service

app = build_resolver()


@app.post(
    "/batch/release",
    summary="Release the collecting batch; idempotent per release_id",
    responses={**ok_response(Release), **error_responses(400, 404, 413, 415, 422, 503)},
)
def release_batch(request: Annotated[ReleaseRequest, Body()]) -> Release:
    log_keys(release_id=request.release_id)
    return get_service().release(request.release_id)


class InvalidReleaseEvent(ValueError):
    """A direct invocation whose event is not `{"release_id": "<1..256 printable characters>"}`."""


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def release_directly(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Step Functions path. Errors surface as their class name: `NoCollectingBatch`, `InvalidReleaseEvent`."""
    try:
        request = ReleaseRequest.model_validate(event)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'event'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise InvalidReleaseEvent(f'Expected {{"release_id": "..."}}: {problems}') from None
    log_keys(release_id=request.release_id)
    return get_service().release(request.release_id).model_dump()


_http_handler = lambda_entry(app)


def lambda_handler(event: Any, context: LambdaContext) -> Any:
    # API Gateway events carry requestContext; Step Functions sends the bare {"release_id": ...}.
    if isinstance(event, dict) and "requestContext" in event:
        return _http_handler(event, context)
    return release_directly(event, context)
