"""The erasure state machine's steps (contract 17; statemachines/erasure.asl.json): begin, find, unclaim,
purge, then per batch account, rewrite and versions, and finish, or fail.

Invoked by Step Functions with `{"step": ..., "erasure_id": ...}`; errors surface as their class name
(`StorageUnavailable`, `ExportNotReady`, ...), which the machine retries or catches. Payloads carry ids and
counts, never a user id: the erasure's record holds that while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from clickstream.api import log_keys
from clickstream.domain.erasure.steps import DatasetOutcome, ErasureSteps, PurgeCounts
from clickstream.fields import Identifier
from clickstream.observability import logger, metrics, tracer
from clickstream.runtime import get_service

REWRITE_MARGIN_MS = 180_000  # the last range, then the judgments and the manifest: well within 3 minutes


class _Step(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    erasure_id: Identifier


class BatchStep(_Step):
    batch_id: Identifier
    live: bool = True  # the batch's items are in DynamoDB (False: expired, its dataset is what holds them)
    accounted: bool | None = None  # what the Account step answered (Rewrite's input)

    def account_args(self) -> tuple[str, str, bool]:
        return self.erasure_id, self.batch_id, self.live

    def rewrite_args(self) -> tuple[str, str]:
        return self.erasure_id, self.batch_id


class DatasetDone(BaseModel):
    """One item of the Datasets map's output (its Outcome state)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    live: bool = True
    sessions_removed: int = Field(default=0, ge=0)
    events_removed: int = Field(default=0, ge=0)
    rewritten: bool = False


class Purged(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    sessions: int = Field(default=0, ge=0)
    events: int = Field(default=0, ge=0)
    tasks: int = Field(default=0, ge=0)


class FinishStep(_Step):
    purged: Purged = Purged()
    datasets: list[DatasetDone] = Field(default_factory=list)


class FailStep(_Step):
    error: str = Field(default="Error", max_length=2048)  # the error name Step Functions caught


def _begin(steps: ErasureSteps, event: dict[str, Any]) -> dict[str, Any]:
    begun = steps.begin(_Step.model_validate(event).erasure_id)
    return {"open": begun.open, "wait_seconds": begun.wait_seconds}


def _batch(event: dict[str, Any]) -> BatchStep:
    batch = BatchStep.model_validate(event)
    log_keys(batch_id=batch.batch_id)
    return batch


def _finish(steps: ErasureSteps, event: dict[str, Any]) -> dict[str, Any]:
    finish = FinishStep.model_validate(event)
    datasets = [DatasetOutcome(**done.model_dump()) for done in finish.datasets]
    return steps.finish(finish.erasure_id, PurgeCounts(**finish.purged.model_dump()), datasets)


def _fail(steps: ErasureSteps, event: dict[str, Any]) -> dict[str, Any]:
    failed = FailStep.model_validate(event)
    return steps.fail(failed.erasure_id, failed.error)


STEPS: dict[str, Callable[[ErasureSteps, dict[str, Any]], dict[str, Any]]] = {
    "begin": _begin,
    "find": lambda steps, event: steps.find(_Step.model_validate(event).erasure_id),
    "unclaim": lambda steps, event: steps.unclaim(_Step.model_validate(event).erasure_id),
    "purge": lambda steps, event: steps.purge(_Step.model_validate(event).erasure_id),
    "account": lambda steps, event: steps.account(*_batch(event).account_args()),
    "rewrite": lambda steps, event: steps.rewrite(
        *_batch(event).rewrite_args(), event.get("time_budget_ms"), _batch(event).accounted
    ),
    "versions": lambda steps, event: steps.versions(*_batch(event).rewrite_args()),
    "finish": _finish,
    "fail": _fail,
}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = str(event.get("step"))
    if step not in STEPS:
        raise ValueError(f"unknown erasure step {step!r}: expected one of {', '.join(STEPS)}")
    log_keys(erasure_id=str(event.get("erasure_id")))
    # A rewrite stops in time to publish what it did and return; the machine calls it again for the rest.
    budget_ms = max(0, context.get_remaining_time_in_millis() - REWRITE_MARGIN_MS)
    return STEPS[step](get_service().erasure_steps, {**event, "time_budget_ms": budget_ms})
