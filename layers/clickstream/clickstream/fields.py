"""The field types every input shares (contract 4): identifiers, event types, field names, timestamps, JSON
objects. Their own module so that models.py holds the shapes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

# Control characters (C0, DEL, C1) are refused in every identifier.
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]+$"


def valid_unicode(value: str) -> str:
    """JSON can carry lone surrogates (\\ud800), which have no UTF-8 form and cannot be stored."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=PRINTABLE), AfterValidator(valid_unicode)
]
EventType = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE), AfterValidator(valid_unicode)
]
FieldName = Annotated[
    str, StringConstraints(min_length=1, max_length=1024, pattern=PRINTABLE), AfterValidator(valid_unicode)
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
