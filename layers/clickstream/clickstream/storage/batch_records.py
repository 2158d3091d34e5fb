"""Released-batch records (`batch#<id>` in BatchesTable) and the state of each batch's dataset.

Batch records carry `listing = "batch"`, the partition key of the index `batches_by_id`, so the batches
can be listed newest first (ids sort by opening time); the pointer and release records are not in it.

An erasure's rewrite of a dataset (domain/datasets/rewrite.py) holds the record's `rewrite_by` while it
works (one rewrite of a dataset at a time: two at once would each write back the other's user), and records
what it wrote once per erasure (the set `erasures`).

DynamoDB calls: GetItem, PutItem, UpdateItem on BatchesTable; Query on its index batches_by_id.
"""

from __future__ import annotations

from typing import Any

from clickstream.records import BatchRecord, Dataset, ReleaseRecord
from clickstream.storage.plumbing import Dynamo, Item, n, optional_n, optional_s, s

BATCHES_BY_ID_INDEX = "batches_by_id"
LISTING = "batch"
BATCH_PREFIX = "batch#"


def batch_key(batch_id: str) -> dict[str, dict[str, str]]:
    return {"pk": s(f"{BATCH_PREFIX}{batch_id}")}


def _dataset(item: Item) -> Dataset:
    return Dataset(
        status=optional_s(item, "dataset_status") or "pending",
        export_id=optional_s(item, "export_id"),
        started_at=optional_n(item, "export_started_at"),
        events_until=optional_n(item, "events_until"),
        exported_at=optional_n(item, "exported_at"),
        session_count=optional_n(item, "exported_sessions"),
        event_count=optional_n(item, "exported_events"),
        parts=optional_n(item, "exported_parts"),
        metrics=optional_s(item, "metrics"),
        experiment_sums={name: value["S"] for name, value in item.get("experiment_sums", {}).get("M", {}).items()},
        experiments_truncated=item.get("experiments_truncated", {}).get("BOOL", False),
        fenced_at=optional_n(item, "fenced_at"),
        judgments=optional_s(item, "judgments"),
        click_model=optional_s(item, "click_model"),
    )


def batch_record(item: Item) -> BatchRecord:
    return BatchRecord(
        batch_id=item["batch_id"]["S"],
        release_id=item["release_id"]["S"],
        released_at=int(item["released_at"]["N"]),
        last_number=int(item["last_number"]["N"]),
        shards=optional_n(item, "shards") or 1,
        session_count=optional_n(item, "session_count"),
        opened_at=optional_n(item, "opened_at"),
        dataset=_dataset(item),
        erased_sessions=optional_n(item, "erased_sessions") or 0,
        erasures=frozenset(item.get("erasures", {}).get("SS", [])),
    )


def _dataset_fields(dataset: Dataset) -> tuple[str, Item]:
    """What the record keeps of an exported dataset: the SET clauses (after `SET`) and their values."""
    sets = (
        "exported_sessions = :sessions, exported_events = :events, exported_parts = :parts, "
        "#metrics = :metrics, judgments = :judgments, click_model = :click_model"
    )
    values: Item = {
        ":sessions": n(dataset.session_count or 0),
        ":events": n(dataset.event_count or 0),
        ":parts": n(dataset.parts or 0),
        ":metrics": s(dataset.metrics or "{}"),
        ":judgments": s(dataset.judgments or "{}"),
        ":click_model": s(dataset.click_model or "{}"),
    }
    if dataset.experiment_sums:  # batches without experiments keep the record as it always was
        sets += ", experiment_sums = :experiments, experiments_truncated = :truncated"
        values[":experiments"] = {"M": {name: s(sums) for name, sums in dataset.experiment_sums.items()}}
        values[":truncated"] = {"BOOL": dataset.experiments_truncated}
    return sets, values


class BatchRecords:
    def __init__(self, dynamo: Dynamo, table: str) -> None:
        self._dynamo = dynamo
        self._table = table

    def put(self, release: ReleaseRecord) -> None:
        """The released batch's record; written before the pointer goes, so the batch is always findable."""
        item: Item = {
            **batch_key(release.batch_id),
            "batch_id": s(release.batch_id),
            "release_id": s(release.release_id),
            "released_at": n(release.released_at),
            "last_number": n(release.last_number),
            "shards": n(release.shards),
            "listing": s(LISTING),
        }
        if release.opened_at is not None:
            item["opened_at"] = n(release.opened_at)
        self._dynamo.put_new(self._table, item, "pk")

    def get(self, batch_id: str) -> BatchRecord | None:
        item = self._dynamo.get(self._table, batch_key(batch_id))
        return None if item is None else batch_record(item)

    def record_session_count(self, batch_id: str, session_count: int, erased_sessions: int = 0) -> None:
        """The batch is settled: its final count, and the erased tombstones beside it. Repeatable."""
        self._dynamo.call(
            "update_item",
            TableName=self._table,
            Key=batch_key(batch_id),
            UpdateExpression="SET session_count = :count, erased_sessions = :erased",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":count": n(session_count), ":erased": n(erased_sessions)},
        )

    def account_erased(self, batch_id: str, session_count: int, erased_sessions: int) -> bool:
        """A settled batch recounted after an erasure (contract 17.4): the sessions that remain and the erased
        tombstones, set together. Never backwards: a recount that saw fewer erased sessions than the record
        holds (a stale walk, beside another erasure's) is not applied. False when not applied."""
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=batch_key(batch_id),
            UpdateExpression="SET session_count = :count, erased_sessions = :erased",
            ConditionExpression=(
                "attribute_exists(session_count) AND "
                "(attribute_not_exists(erased_sessions) OR erased_sessions <= :erased)"
            ),
            ExpressionAttributeValues={":count": n(session_count), ":erased": n(erased_sessions)},
        )
        return response is not None

    def newest(self, limit: int, before: str | None) -> tuple[list[BatchRecord], bool]:
        """Released batches, newest first, older than `before` if given; and whether more follow."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BATCHES_BY_ID_INDEX,
            "KeyConditionExpression": "listing = :listing",
            "ExpressionAttributeValues": {":listing": s(LISTING)},
            "ScanIndexForward": False,
        }
        if before is not None:
            request["KeyConditionExpression"] += " AND batch_id < :before"
            request["ExpressionAttributeValues"][":before"] = s(before)
        items = list(self._dynamo.query(request, total=limit + 1))
        return [batch_record(item) for item in items[:limit]], len(items) > limit

    def claim_export(
        self, batch_id: str, claim: Dataset, stale_before: int, held_before: int = 0
    ) -> BatchRecord | None:
        """Make `claim.export_id` the batch's export (status exporting, its start), unless the dataset is
        exported or another export holds it (one started after `stale_before`), or an erasure is removing
        what a failed export left (a hold taken after `held_before`); repeatable by the same export.
        The first export also fences the batch (`fenced_at`, never changed again: contract 13.5), and its
        cut-off `events_until` is that fence. None when not taken."""
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=batch_key(batch_id),
            UpdateExpression=(
                "SET dataset_status = :exporting, export_id = :export, export_started_at = :started, "
                "fenced_at = if_not_exists(fenced_at, :until), events_until = if_not_exists(fenced_at, :until)"
            ),
            ConditionExpression=(
                "attribute_exists(session_count) AND (attribute_not_exists(dataset_status) "
                "OR (dataset_status = :failed AND (attribute_not_exists(rewrite_by) OR rewrite_started_at < :held)) "
                "OR (dataset_status = :exporting AND (export_id = :export OR export_started_at < :stale)))"
            ),
            ExpressionAttributeValues={
                ":exporting": s("exporting"),
                ":failed": s("failed"),
                ":export": s(claim.export_id or ""),
                ":started": n(claim.started_at or 0),
                ":until": n(claim.events_until or 0),
                ":stale": n(stale_before),
                ":held": n(held_before),
            },
            ReturnValues="ALL_NEW",
        )
        return None if response is None else batch_record(response["Attributes"])

    def finish_export(self, batch_id: str, dataset: Dataset) -> bool:
        """The dataset exists (its manifest is written): record it. Only by the export that holds it;
        repeatable. Its stream record announces the export (BatchExported)."""
        sets, values = _dataset_fields(dataset)
        values |= {
            ":exported": s("exported"),
            ":exporting": s("exporting"),
            ":export": s(dataset.export_id or ""),
            ":at": n(dataset.exported_at or 0),
        }
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=batch_key(batch_id),
            UpdateExpression=f"SET dataset_status = :exported, exported_at = :at, {sets}",
            ConditionExpression="export_id = :export AND dataset_status IN (:exporting, :exported)",
            ExpressionAttributeNames={"#metrics": "metrics"},  # a reserved word
            ExpressionAttributeValues=values,
        )
        return response is not None

    def hold_rewrite(self, batch_id: str, erasure_id: str, now: int, stale_before: int) -> bool:
        """Make `erasure_id` the one rewriting the exported dataset (or removing what a failed export left:
        no export takes the batch meanwhile), unless another holds it (one that took it after
        `stale_before`); repeatable by the same erasure. False when not taken."""
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=batch_key(batch_id),
            UpdateExpression="SET rewrite_by = :erasure, rewrite_started_at = :now",
            ConditionExpression=(
                "dataset_status IN (:exported, :failed) AND (attribute_not_exists(rewrite_by) "
                "OR rewrite_by = :erasure OR rewrite_started_at < :stale)"
            ),
            ExpressionAttributeValues={
                ":exported": s("exported"),
                ":failed": s("failed"),
                ":erasure": s(erasure_id),
                ":now": n(now),
                ":stale": n(stale_before),
            },
        )
        return response is not None

    def release_rewrite(self, batch_id: str, erasure_id: str) -> None:
        """Let go of the hold (there was no dataset to rewrite, or the rewrite is recorded already)."""
        self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=batch_key(batch_id),
            UpdateExpression="REMOVE rewrite_by, rewrite_started_at",
            ConditionExpression="rewrite_by = :erasure",
            ExpressionAttributeValues={":erasure": s(erasure_id)},
        )

    def rewrite_dataset(self, batch_id: str, dataset: Dataset, erasure_id: str, removed: int) -> bool:
        """The rewritten dataset recorded, once per erasure: its counts and reports; `removed` sessions moved
        from session_count to erased_sessions (non-zero only for a batch whose items expired: no walk can
        count them); the hold released. Repeatable; False when the dataset is not exported (or not held)."""
        sets, values = _dataset_fields(dataset)
        values |= {
            ":exported": s("exported"),
            ":erasure": s(erasure_id),
            ":erasures": {"SS": [erasure_id]},
            ":removed": n(removed),
            ":minus": n(-removed),
        }
        removes = "REMOVE rewrite_by, rewrite_started_at"
        if not dataset.experiment_sums:  # the erased user's sessions were the experiments' only ones
            removes += ", experiment_sums, experiments_truncated"
        adds = "ADD erasures :erasures, session_count :minus, erased_sessions :removed"
        response = self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=batch_key(batch_id),
            UpdateExpression=f"SET {sets} {removes} {adds}",
            ConditionExpression=(
                "dataset_status = :exported AND rewrite_by = :erasure "
                "AND (attribute_not_exists(erasures) OR NOT contains(erasures, :erasure))"
            ),
            ExpressionAttributeNames={"#metrics": "metrics"},  # a reserved word
            ExpressionAttributeValues=values,
        )
        return response is not None or self._recorded_before(batch_id, erasure_id)

    def _recorded_before(self, batch_id: str, erasure_id: str) -> bool:
        """A repeated step: the rewrite is recorded already, only the hold may be left to release."""
        record = self.get(batch_id)
        if record is None or record.dataset.status != "exported" or erasure_id not in record.erasures:
            return False
        self.release_rewrite(batch_id, erasure_id)
        return True

    def fail_export(self, batch_id: str, export_id: str) -> None:
        """The export gave up; the next one may take the batch over."""
        self._dynamo.conditional(
            "update_item",
            TableName=self._table,
            Key=batch_key(batch_id),
            UpdateExpression="SET dataset_status = :failed",
            ConditionExpression="export_id = :export AND dataset_status = :exporting",
            ExpressionAttributeValues={":failed": s("failed"), ":export": s(export_id), ":exporting": s("exporting")},
        )
