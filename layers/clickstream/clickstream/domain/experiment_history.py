"""An experiment across releases (contract 15.3): its report over every exported batch that counted it.

The sums of each batch add up exactly (counts, and sessions by best position), so the merged report is the
report of all those sessions together, never an average of rates; it reads one index item and one
attribute of each batch's record, never a dataset.
"""

from __future__ import annotations

import json

from clickstream.domain.context import Context
from clickstream.domain.datasets.experiments import experiment_report, merge_sums
from clickstream.errors import ExperimentNotFound
from clickstream.reports import ExperimentAcrossBatches


class ExperimentHistory:
    def __init__(self, context: Context) -> None:
        self._context = context
        self._records = context.storage.experiments

    def across_batches(self, experiment_id: str) -> ExperimentAcrossBatches:
        """`GET /experiment`; ExperimentNotFound when no exported batch has it."""
        batch_ids = self._records.batches_of(experiment_id)
        found = self._context.fanout.map(lambda batch_id: self._records.sums_in(batch_id, experiment_id), batch_ids)
        # A batch is named before its dataset is recorded: one whose export has not finished is left out.
        counted = [batch for batch in found if batch.exported and batch.sums is not None]
        if not counted:
            raise ExperimentNotFound(experiment_id)
        sums = merge_sums({experiment_id: json.loads(batch.sums or "{}")} for batch in counted)
        report = experiment_report(experiment_id, sums[experiment_id])
        return ExperimentAcrossBatches.model_validate({**report, "batches": [batch.batch_id for batch in counted]})
