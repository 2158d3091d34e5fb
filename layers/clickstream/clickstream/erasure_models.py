"""The shapes of erasure requests (contract 17.3): `POST /user/erase`, `GET /erasure`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clickstream.fields import Identifier

ERASURE_ID_EXAMPLE = "e-1700000000000-0123456789ab"


class EraseRequest(BaseModel):
    """`POST /user/erase` body: the user id as the front end sends it (the raw id, also with UserIdHashing=hmac)."""

    # Strict like every input (clickstream.models): a number is not an id.
    model_config = ConfigDict(
        strict=True, extra="ignore", frozen=True, json_schema_extra={"examples": [{"user_id": "user-42"}]}
    )

    user_id: Identifier


class ErasureRequested(BaseModel):
    """The erasure a request stands for: new, or the one of the same user still pending or running."""

    erasure_id: str
    user_id: str = Field(description="The user id of the request, echoed (the erasure record never keeps it)")
    status: Literal["pending", "running"]
    requested_at: int


class ErasureView(BaseModel):
    """`GET /erasure`: an erasure's progress. It never shows the user id: once done or failed the record keeps
    only a hash of it. Counts are 0 until known."""

    erasure_id: str
    status: Literal["pending", "running", "done", "failed"]
    requested_at: int
    started_at: int | None
    completed_at: int | None
    sessions: int = Field(description="Sessions erased (their events, task and claim with them)")
    events: int
    tasks: int
    datasets_rewritten: int
    error: str | None = Field(description="Why a failed erasure failed (the error's name); null otherwise")
    requested_by: str | None = Field(
        description="Who asked: the IAM caller of POST /user/erase (its ARN), kept after the erasure is done; "
        "null when the request came without an IAM caller"
    )
