"""The service's data shapes: what callers send and what they get back (contract sections 2 to 4).

Inputs are strict: a number sent as a string or a bool sent as a number is a 422, never coerced.
Unknown fields are ignored, so EmbeddingStudio clients that send extra fields keep working.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from clickstream.codec import exact_json_number

# Control characters (C0, DEL, C1) are refused in every identifier.
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]+$"


def _valid_unicode(value: str) -> str:
    """JSON can carry lone surrogates (\\ud800), which have no UTF-8 form and cannot be stored."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=PRINTABLE), AfterValidator(_valid_unicode)
]
EventType = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE), AfterValidator(_valid_unicode)
]
FieldName = Annotated[
    str, StringConstraints(min_length=1, max_length=1024, pattern=PRINTABLE), AfterValidator(_valid_unicode)
]
# An event_id is part of a sort key of at most 1024 bytes (13 digits, "#", the id): 256 emoji would not fit.
MAX_EVENT_ID_BYTES = 1000


def _fits_event_key(value: str) -> str:
    if len(value.encode("utf-8")) > MAX_EVENT_ID_BYTES:
        raise ValueError(f"must be at most {MAX_EVENT_ID_BYTES} bytes in UTF-8")
    return value


EventId = Annotated[Identifier, AfterValidator(_fits_event_key)]
Timestamp = Annotated[int, Field(ge=0, le=10**13 - 1, description="Milliseconds since the Unix epoch, UTC")]
JsonObject = dict[str, Any]

MAX_SEARCH_RESULTS = 1000
MAX_EVENTS_PER_CALL = 1000


class _Input(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class SortBy(_Input):
    field: FieldName
    order: Literal["asc", "desc"] = "asc"
    force_not_payload: bool = False


# A rank keeps its JSON type (1 stays 1, 1.5 stays 1.5); one schema, a number, in requests and responses.
Rank = Annotated[int | float, PlainValidator(exact_json_number), WithJsonSchema({"type": "number"})]


class SearchResult(_Input):
    object_id: Identifier
    rank: Rank | None = None
    meta: JsonObject | None = None


def _text_or_object(value: Any) -> str | JsonObject:
    if isinstance(value, str):
        return _valid_unicode(value)
    if isinstance(value, dict):
        return value
    raise ValueError("must be a string or a JSON object")


# One check instead of a union, so an error names `search_query`, not a member of the union.
SearchQuery = Annotated[
    str | JsonObject,
    PlainValidator(_text_or_object, json_schema_input_type=str | JsonObject),
]


class NewSession(_Input):
    """`POST /session` body."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "sess-abc123",
                    "search_query": "red running shoes",
                    "search_results": [{"object_id": "shoe-17", "rank": 1, "meta": {"brand": "acme"}}],
                    "search_meta": {"latency_ms": 38},
                    "sort_by": {"field": "price", "order": "asc"},
                    "user_id": "user-42",
                }
            ]
        }
    )

    session_id: Identifier
    search_query: SearchQuery
    search_results: Annotated[list[SearchResult], Field(max_length=MAX_SEARCH_RESULTS)]
    search_meta: JsonObject | None = None
    payload_filter: JsonObject | None = None
    sort_by: SortBy | None = None
    user_id: Identifier | None = None
    created_at: Timestamp | None = None
    is_payload_search: bool = False


class NewEvent(_Input):
    event_id: EventId
    object_id: Identifier
    event_type: EventType = "click"
    created_at: Timestamp | None = None
    meta: JsonObject | None = None


class NewEvents(_Input):
    """`POST /session/events` body."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "sess-abc123",
                    "events": [{"event_id": "evt-1", "object_id": "shoe-17", "event_type": "click"}],
                }
            ]
        }
    )

    session_id: Identifier
    events: Annotated[list[NewEvent], Field(min_length=1, max_length=MAX_EVENTS_PER_CALL)]


class SessionRef(_Input):
    """Body of the routes that name one session."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"session_id": "sess-abc123"}]})

    session_id: Identifier


MAX_TASK_ERROR_CHARS = 1000


class TaskCompletion(_Input):
    """`POST /improvement/tasks/complete` body: the worker's report on a session's task."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"session_id": "sess-abc123", "status": "done"}]})

    session_id: Identifier
    status: Literal["done", "failed"]
    error: Annotated[str, StringConstraints(max_length=MAX_TASK_ERROR_CHARS), AfterValidator(_valid_unicode)] | None = (
        None
    )
    requested_at: Timestamp | None = Field(
        default=None,
        description="The task's requested_at, as delivered: completes that task only, not one scheduled since",
    )

    @field_validator("error")
    @classmethod
    def _only_when_failed(cls, error: str | None, info: ValidationInfo) -> str | None:
        if error is not None and info.data.get("status") != "failed":
            raise ValueError("only a failed task has an error")
        return error


class ReleaseRequest(_Input):
    """`POST /batch/release` body, and the direct invocation event of the release function."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"release_id": "release-v1"}]})

    release_id: Identifier


# Outputs. They document the responses in OpenAPI; the handlers build the same shapes.


class Registration(BaseModel):
    session_id: str
    batch_id: str
    session_number: int


class EventsAdded(BaseModel):
    session_id: str
    accepted: int
    duplicates: int


class IrrelevantMark(BaseModel):
    session_id: str
    is_irrelevant: Literal[True] = True


class ImprovementTask(BaseModel):
    """The task object (contract 2.1, 12): also the body of the message its worker receives."""

    session_id: str
    batch_id: str
    session_number: int
    status: Literal["pending", "done", "failed"]
    requested_at: int
    completed_at: int | None = None
    error: str | None = None


class TaskList(BaseModel):
    tasks: list[ImprovementTask]
    next: str | None = Field(description="The `after` of the next page; null when this is the last")


class ImprovementDecision(BaseModel):
    session_id: str
    status: Literal["scheduled", "skipped"]
    reason: Literal["payload_search", "no_events"] | None = None
    task: ImprovementTask | None = None


class Release(BaseModel):
    release_id: str
    batch_id: str
    released_at: int
    session_count: int


class EventView(BaseModel):
    event_id: str
    object_id: str
    event_type: str
    created_at: int
    meta: JsonObject | None


class SessionView(BaseModel):
    session_number: int
    session_id: str
    search_query: str | JsonObject
    search_results: list[SearchResult]
    search_meta: JsonObject | None
    payload_filter: JsonObject | None
    sort_by: SortBy | None
    user_id: str | None
    created_at: int
    is_irrelevant: bool
    is_payload_search: bool
    events: list[EventView]


class SessionWithBatch(SessionView):
    batch_id: str


class BatchPage(BaseModel):
    batch_id: str
    last_number: int | None
    has_more: bool
    sessions: list[SessionView]


class ErrorBody(BaseModel):
    message: str
    request_id: str | None = None


class FieldProblem(BaseModel):
    field: str
    message: str
    type: str


class ValidationErrorBody(BaseModel):
    message: str
    errors: list[FieldProblem]
