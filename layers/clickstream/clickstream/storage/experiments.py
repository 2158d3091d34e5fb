"""Experiments across releases (contract 15.3), in BatchesTable: which batches hold an experiment, and each
batch's sums of it.

`experiment#<id>` lists the batches whose export counted the experiment (a string set, added to by the
export's finish step, so repeating it is harmless); the sums themselves live on the batch's record
(`experiment_sums`, a map from experiment id to JSON text), written with its dataset, so one experiment's
sums are read with a projection, never the batch's data. A batch id takes about 30 bytes of the set: an
experiment can span some 13,000 releases before its item reaches DynamoDB's 400 KB.

DynamoDB calls: GetItem, UpdateItem on BatchesTable.
"""

from __future__ import annotations

from clickstream.records import BatchExperiment
from clickstream.storage.batch_records import batch_key
from clickstream.storage.plumbing import Dynamo, optional_s, s


def experiment_key(experiment_id: str) -> dict[str, dict[str, str]]:
    return {"pk": s(f"experiment#{experiment_id}")}


class ExperimentRecords:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def add_batch(self, experiment_id: str, batch_id: str) -> None:
        """Name `batch_id` among the experiment's batches (idempotent: a set)."""
        self._dynamo.call(
            "update_item",
            TableName=self._table,
            Key=experiment_key(experiment_id),
            UpdateExpression="ADD batch_ids :batch",
            ExpressionAttributeValues={":batch": {"SS": [batch_id]}},
        )

    def batches_of(self, experiment_id: str) -> list[str]:
        """The batches named for the experiment, ascending (oldest first); empty for an unknown experiment."""
        item = self._dynamo.get(self._table, experiment_key(experiment_id))
        return [] if item is None else sorted(item.get("batch_ids", {}).get("SS", []))

    def sums_in(self, batch_id: str, experiment_id: str) -> BatchExperiment:
        """The batch's sums of the experiment: one attribute of its record, by projection."""
        response = self._dynamo.call(
            "get_item",
            TableName=self._table,
            Key=batch_key(batch_id),
            ConsistentRead=True,
            ProjectionExpression="dataset_status, experiment_sums.#experiment",
            ExpressionAttributeNames={"#experiment": experiment_id},
        )
        item = response.get("Item") or {}
        sums = item.get("experiment_sums", {}).get("M", {}).get(experiment_id)
        return BatchExperiment(batch_id, optional_s(item, "dataset_status") == "exported", sums and sums["S"])
