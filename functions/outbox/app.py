"""The outbox (contracts 7.1, 12): reads the batches and tasks tables' DynamoDB streams; announces each
release (BatchReleased) and each export (BatchExported) on the bus, and delivers each task that became
pending to the improvement tasks queue, at least once.

A record that fails is reported back alone (partial batch response), so Lambda retries it, in order,
without announcing the others again. A record that keeps failing goes to the dead-letter queue; invoked
directly with `{"replay": {"batch_ids": [...], "session_ids": [...]}}`, the function announces those batches
again from their records, and delivers those sessions' pending tasks again (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clickstream.api import log_keys
from clickstream.domain.announcements import Announcement
from clickstream.errors import BatchNotFound, TaskNotFound
from clickstream.fields import Identifier
from clickstream.observability import logger, metrics, tracer
from clickstream.runtime import get_outbox

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    batch_ids: list[Identifier] = Field(default_factory=list, max_length=100)
    session_ids: list[Identifier] = Field(default_factory=list, max_length=1000)  # their pending tasks

    @model_validator(mode="after")
    def _names_something(self) -> Replay:
        if not self.batch_ids and not self.session_ids:
            raise ValueError("batch_ids or session_ids: name at least one batch or session to replay")
        return self


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    replay: Replay


def relay(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    if change is None:
        return
    images = record.raw_event.get("dynamodb", {})  # as the stream carries them: storage decodes them
    try:
        announcement = get_outbox().relay(images.get("OldImage"), images.get("NewImage"))
    except Exception:
        keys = change.keys or {}  # pk (a batch or release) or session_id (a task): what to replay if it is lost
        logger.exception(
            "Could not announce; the record is retried",
            extra={"item": keys.get("pk") or keys.get("session_id"), "sequence_number": change.sequence_number},
        )
        raise
    if announcement is not None:
        ids = ("batch_id", "release_id", "session_id", "erasure_id")
        log_keys(**{name: str(announcement.detail[name]) for name in ids if name in announcement.detail})
        logger.info("Announced", extra={"detail_type": announcement.detail_type})


def replay_named(replay: Replay) -> dict[str, list[str] | str]:
    """Each named batch and session: what was announced again, or "not_found" (the others go on)."""
    outbox = get_outbox()
    steps: list[tuple[str, Callable[[str], list[Announcement]]]] = [
        *((batch_id, outbox.replay) for batch_id in replay.batch_ids),
        *((session_id, outbox.replay_task) for session_id in replay.session_ids),
    ]
    replayed: dict[str, list[str] | str] = {}
    for name, announce_again in steps:
        try:
            replayed[name] = [said.detail_type for said in announce_again(name)]
        except (BatchNotFound, TaskNotFound):
            replayed[name] = "not_found"
    logger.info("Replayed", extra={"replayed": replayed})
    return replayed


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    if "replay" in event:
        return replay_named(ReplayRequest.model_validate(event).replay)
    return process_partial_response(event=event, record_handler=relay, processor=processor, context=context)
