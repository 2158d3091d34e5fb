"""The export state machine's steps (contract 7.2, 7.6, 14): plan a released batch's export, write one range
of it (a Distributed Map item), judge it (click models and judgments), finish it (report and manifest),
expire a range's items once the dataset exists (retention), or mark the export failed.

Invoked by Step Functions with `{"step": ..., ...}`; errors surface as their class name
(`ExportNotReady`, `ExportRangeMissing`, `ExportSessionsMismatch`, `StorageUnavailable`, ...). The state
machine's payload is shaped here only: the step models below convert to and from the domain's `ExportJob`,
`NumberRange` and `ExportPlan`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from clickstream.api import log_keys
from clickstream.domain.datasets.export import ExportPlan
from clickstream.domain.datasets.layout import NumberRange
from clickstream.domain.datasets.parts import ExportJob
from clickstream.fields import Identifier
from clickstream.observability import logger, metrics, tracer
from clickstream.runtime import get_service


class _Step(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Job(_Step):
    batch_id: Identifier
    release_id: Identifier
    export_id: str = Field(min_length=1, max_length=2048)
    shards: int = Field(ge=1, le=64)
    events_until: int = Field(ge=0)
    read_after: int = Field(default=0, ge=0)  # 0 in jobs planned before the fence existed

    def job(self) -> ExportJob:
        fields = (self.batch_id, self.release_id, self.export_id, self.shards, self.events_until, self.read_after)
        return ExportJob(*fields)

    @classmethod
    def of(cls, job: ExportJob) -> Job:
        return cls(
            batch_id=job.batch_id,
            release_id=job.release_id,
            export_id=job.export_id,
            shards=job.shards,
            events_until=job.events_until,
            read_after=job.read_after,
        )


class Range(_Step):
    """One item of the plan's range list (domain/datasets/layout.py, range_list), as the Map hands it over."""

    index: int = Field(ge=0)
    first: int = Field(ge=1)
    last: int = Field(ge=1)

    def number_range(self) -> NumberRange:
        return NumberRange(self.index, self.first, self.last)


def plan_payload(plan: ExportPlan) -> dict[str, Any]:
    """The plan step's answer, as the export machine's Choice and Map states read it."""
    if plan.job is None:
        return {"skip": True, "reason": plan.skip_reason, "batch_id": plan.batch_id}
    return {
        "skip": False,
        "job": Job.of(plan.job).model_dump(),
        "ranges": plan.ranges,
        "ranges_key": plan.ranges_key,
        "wait_seconds": plan.wait_seconds,
    }


class PlanStep(_Step):
    release_id: Identifier
    export_id: str = Field(min_length=1, max_length=2048)


class RangeStep(_Step):
    job: Job
    range: Range


class ExpireStep(_Step):
    job: Job
    range: Range
    expires_at: int = Field(ge=0)


class JudgeStep(_Step):
    job: Job
    ranges: int = Field(ge=0)


class JudgmentsFile(_Step):
    uri: str = Field(min_length=1)
    pairs: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Judged(_Step):
    """What the judge step returned, handed on to finish."""

    judgments: JudgmentsFile
    click_model: dict[str, Any]


class FinishStep(_Step):
    job: Job
    ranges: int = Field(ge=0)
    judged: Judged


class FailStep(_Step):
    batch_id: Identifier
    export_id: str = Field(min_length=1, max_length=2048)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = event.get("step")
    exporter = get_service().exporter
    if step == "plan":
        plan = PlanStep.model_validate(event)
        log_keys(release_id=plan.release_id)
        return plan_payload(exporter.plan(plan.release_id, plan.export_id))
    if step == "range":
        part = RangeStep.model_validate(event)
        log_keys(batch_id=part.job.batch_id)
        return exporter.write_range(part.job.job(), part.range.number_range())
    if step == "judge":
        judge = JudgeStep.model_validate(event)
        log_keys(batch_id=judge.job.batch_id)
        return exporter.judge(judge.job.job(), judge.ranges)
    if step == "finish":
        finish = FinishStep.model_validate(event)
        log_keys(batch_id=finish.job.batch_id)
        return exporter.finish(finish.job.job(), finish.ranges, finish.judged.model_dump())
    if step == "expire":
        expire = ExpireStep.model_validate(event)
        log_keys(batch_id=expire.job.batch_id)
        return exporter.expire_range(expire.job.job(), expire.range.number_range(), expire.expires_at)
    if step == "fail":
        failed = FailStep.model_validate(event)
        log_keys(batch_id=failed.batch_id)
        exporter.fail(failed.batch_id, failed.export_id)
        return {"batch_id": failed.batch_id, "status": "failed"}
    raise ValueError(f"unknown export step {step!r}: expected plan, range, judge, finish, expire or fail")
