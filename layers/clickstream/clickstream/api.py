"""What every HTTP handler shares: the resolver, the one mapping of errors to responses, observability."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BeforeValidator

from clickstream.codec import parse_body
from clickstream.errors import (
    BatchExported,
    BatchNotFound,
    ClickstreamError,
    ConflictError,
    ErasureNotFound,
    ExperimentNotFound,
    InvalidField,
    NoCollectingBatch,
    PayloadTooLarge,
    ReportNotFound,
    SessionNotFound,
    StorageUnavailable,
    TaskCompletedOtherwise,
    TaskNotFound,
    UserBeingErased,
)
from clickstream.models import ErrorBody, ValidationErrorBody
from clickstream.observability import PowertoolsTelemetry, logger, metrics, traced_section, tracer

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def _ascii_digits(value: Any) -> Any:
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written in ASCII decimal digits, like 10")
    return value


def digits_query(**constraints: Any) -> Any:
    """`Query(**constraints)` for an integer parameter: ASCII decimal digits only (pydantic's lax int also
    takes "1_0", " 5", "5 " and "+5"). The check runs before the bounds, which stay documented as such."""
    query = Query(**constraints)
    query.metadata.append(BeforeValidator(_ascii_digits))
    return query


_telemetry = PowertoolsTelemetry()

_STATUS: dict[type[ClickstreamError], HTTPStatus] = {
    SessionNotFound: HTTPStatus.NOT_FOUND,
    BatchNotFound: HTTPStatus.NOT_FOUND,
    ExperimentNotFound: HTTPStatus.NOT_FOUND,
    ReportNotFound: HTTPStatus.NOT_FOUND,
    TaskNotFound: HTTPStatus.NOT_FOUND,
    ErasureNotFound: HTTPStatus.NOT_FOUND,
    UserBeingErased: HTTPStatus.CONFLICT,
    TaskCompletedOtherwise: HTTPStatus.CONFLICT,
    NoCollectingBatch: HTTPStatus.NOT_FOUND,
    InvalidField: HTTPStatus.UNPROCESSABLE_ENTITY,
    PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    ConflictError: HTTPStatus.CONFLICT,
    BatchExported: HTTPStatus.CONFLICT,
    StorageUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
}


def json_response(status: int, body: str | dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def error_responses(*statuses: int) -> dict[int, Any]:
    """OpenAPI entries for the error statuses a route can answer with."""
    documented: dict[int, Any] = {}
    for status in statuses:
        model = ValidationErrorBody if status in (400, 422) else ErrorBody
        documented[status] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"model": model}},
        }
    return documented


def ok_response(model: Any, description: str = "OK", status: int = 200) -> dict[int, Any]:
    return {status: {"description": description, "content": {"application/json": {"model": model}}}}


def _field_name(location: Sequence[Any]) -> str:
    """("body", "events", 0, "created_at") -> "events[0].created_at"; ("query", "limit") -> "limit"."""
    name = ""
    for part in location[1:] if location and location[0] in ("body", "query") else location:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _validation_failed(error: RequestValidationError) -> Response[Any]:
    problems = error.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        reason = next(str(p.get("ctx", {}).get("error", "")) for p in problems if p.get("type") == "json_invalid")
        return json_response(HTTPStatus.BAD_REQUEST, _malformed_json(reason or "not valid JSON"))
    errors = [
        {"field": _field_name(problem.get("loc", ())), "message": str(problem.get("msg", "")), "type": problem["type"]}
        for problem in problems
    ]
    fields = ", ".join(dict.fromkeys(error["field"] for error in errors))
    return json_response(HTTPStatus.UNPROCESSABLE_ENTITY, {"message": f"Invalid request: {fields}", "errors": errors})


def _malformed_json(reason: str) -> dict[str, Any]:
    return {"message": "Malformed JSON body", "errors": [{"field": "body", "message": reason, "type": "json_invalid"}]}


_NOT_JSON = {"message": "Content-Type must be application/json"}


def _unsupported_media_type(_: Exception) -> Response[Any]:
    return json_response(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, _NOT_JSON)


def _invalid_field(error: InvalidField) -> Response[Any]:
    return json_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        {
            "message": f"Invalid request: {error.field}",
            "errors": [{"field": error.field, "message": error.reason, "type": "value_error"}],
        },
    )


def _domain_error(error: ClickstreamError) -> Response[Any]:
    status = next(code for kind, code in _STATUS.items() if isinstance(error, kind))
    headers = None
    if isinstance(error, StorageUnavailable):
        logger.warning("DynamoDB unavailable after retries", exc_info=error.__cause__)
        headers = {"Retry-After": str(error.retry_after_seconds)}
    elif isinstance(error, ConflictError):
        _telemetry.rare("ConflictsReturned", f"Answered 409: {error.message}")
    return json_response(status, {"message": error.message}, headers)


def _unknown_route(_: NotFoundError) -> Response[Any]:
    return json_response(HTTPStatus.NOT_FOUND, {"message": "Not Found"})


def _parse_request_body(text: str | bytes) -> Any:
    """Every request body of this API is a JSON object. (Powertools would read `[{...}]` as `{...}`.)"""
    document = parse_body(text)
    if not isinstance(document, dict):
        problem = {"type": "dict_type", "loc": ("body",), "msg": "Input should be a JSON object", "input": {}}
        raise RequestValidationError([problem])
    return document


def log_keys(**ids: str) -> None:
    """Put the ids a request names (session_id, batch_id, release_id) on every log line it writes."""
    logger.thread_safe_append_keys(**ids)


def _trace_route(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Each route in a subsegment of its own, named after its function (observability: why not a decorator)."""
    route = app.context.get("_route")
    name = getattr(getattr(route, "func", None), "__name__", "route")
    with traced_section(f"## {name}"):
        return next_middleware(app)


def build_resolver() -> APIGatewayHttpResolver:
    """A resolver with request validation and the service's error mapping (the one place for it)."""
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=_parse_request_body)

    def unexpected(error: Exception) -> Response[Any]:
        # A bug: log it whole, tell the caller only which request to quote.
        logger.exception("Unhandled error")
        request_id = app.current_event.request_context.request_id
        return json_response(
            HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "Internal server error", "request_id": request_id}
        )

    handlers: list[tuple[type[Exception], Callable[[Any], Response[Any]]]] = [
        (RequestValidationError, _validation_failed),
        (RequestUnsupportedContentType, _unsupported_media_type),
        (InvalidField, _invalid_field),
        (ClickstreamError, _domain_error),
        (NotFoundError, _unknown_route),
        (Exception, unexpected),
    ]
    # Powertools picks the handler of the most specific class, whatever the order here.
    for error_class, respond in handlers:
        app.exception_handler(error_class)(respond)
    app.use(middlewares=[_trace_route])
    return app


def _answer_before_resolving(status: HTTPStatus, body: dict[str, Any]) -> dict[str, Any]:
    """A Lambda HTTP response for requests refused before the resolver sees them, shaped like its own."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def _sends_other_than_json(event: dict[str, Any]) -> bool:
    """A body in a media type other than JSON. (Powertools would parse forms; this API takes JSON only.)"""
    if not event.get("body"):
        return False
    content_type = (event.get("headers") or {}).get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    return media_type not in ("", content_types.APPLICATION_JSON)


def _undecodable_body(event: dict[str, Any]) -> bool:
    """A base64-encoded body that is not UTF-8 text. (Powertools would raise decoding it, before any parser.)"""
    if not event.get("isBase64Encoded") or not event.get("body"):
        return False
    try:
        base64.b64decode(event["body"], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return True
    return False


def lambda_entry(app: APIGatewayHttpResolver) -> Handler:
    """The Lambda handler of an HTTP function: correlation id in logs, traced, metrics flushed. The trace
    keeps no response: answers carry sessions, queries and user ids (contract 13.3)."""

    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if _sends_other_than_json(event):
            return _answer_before_resolving(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, _NOT_JSON)
        if _undecodable_body(event):
            return _answer_before_resolving(HTTPStatus.BAD_REQUEST, _malformed_json("body is not UTF-8"))
        return app.resolve(event, context)

    traced: Handler = tracer.capture_lambda_handler(handler, capture_response=False)
    entry: Handler = logger.inject_lambda_context(
        traced, correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
    )
    return entry
