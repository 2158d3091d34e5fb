"""The outbox (contract 7.1): reads the batches table's DynamoDB stream and announces each release
(BatchReleased) and each export (BatchExported) on the bus, at least once.

A record that fails is reported back alone (partial batch response), so Lambda retries it, in order,
without announcing the others again. A record that keeps failing goes to the dead-letter queue; invoked
directly with `{"replay": {"batch_ids": [...]}}`, the function announces those batches again from their
records (docs/operations.md).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from clickstream.api import log_keys
from clickstream.models import Identifier
from clickstream.observability import logger, metrics, tracer
from clickstream.runtime import get_outbox

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    batch_ids: list[Identifier] = Field(min_length=1, max_length=100)


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    replay: Replay


def relay(record: DynamoDBRecord) -> None:
    change = record.dynamodb
    if change is None:
        return
    try:
        announcement = get_outbox().relay(change.old_image, change.new_image)
    except Exception:
        key = (change.keys or {}).get("pk")
        logger.exception(
            "Could not announce; the record is retried", extra={"pk": key, "sequence_number": change.sequence_number}
        )
        raise
    if announcement is not None:
        log_keys(batch_id=announcement.detail["batch_id"], release_id=announcement.detail["release_id"])
        logger.info("Announced", extra={"detail_type": announcement.detail_type})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, Any]:
    if "replay" in event:
        request = ReplayRequest.model_validate(event)
        replayed = {batch_id: get_outbox().replay(batch_id) for batch_id in request.replay.batch_ids}
        logger.info("Replayed", extra={"batch_ids": list(replayed)})
        return {batch_id: [said.detail_type for said in announced] for batch_id, announced in replayed.items()}
    return process_partial_response(event=event, record_handler=relay, processor=processor, context=context)
