"""The outbox (contracts 7.1, 12): what a change of the tables announces, read from their DynamoDB streams.

A release is acknowledged only after its record is settled, and a task only after it is stored; those
writes are in the tables' streams whatever happens to the function that made them. The outbox reads the
streams (at least once, in order per item) and announces. So no release, export or task is acknowledged
without being announced, even if the function that made it crashed right after. Consumers dedupe.

* `release#<id>` gains its `session_count` (the release is settled) -> BatchReleased on the bus.
* `batch#<id>` reaches `dataset_status = exported` -> BatchExported (manifest, judgments), and the quality
  report as metrics.
* A task becomes `pending` (scheduled, or scheduled again after done/failed) -> its task object on the
  improvement tasks queue.
* `erasure#<id>` is stored (an erasure requested, contract 17) -> the erasure state machine started, its
  execution named by the erasure id (one execution however often the record is delivered).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from clickstream.changes import BatchChange, ErasureChange, ReleaseChange, StoredChange, TaskChange
from clickstream.domain.datasets.experiments import report_of_recorded
from clickstream.domain.datasets.layout import judgments_key, manifest_key
from clickstream.domain.improvement import task_view
from clickstream.domain.ports import Bus, ErasureStarter, Lake, Queue, Stores
from clickstream.domain.telemetry import Telemetry
from clickstream.errors import BatchNotFound, TaskNotFound
from clickstream.records import BatchRecord, StoredTask, recorded

Image = Mapping[str, Any]  # a stream image as the stream carries it (storage decodes it)
ChangeDecoder = Callable[[Image | None, Image | None], StoredChange]
TASK_MESSAGE = "ImprovementTask"  # an announcement sent to the tasks queue, not the bus
ERASURE_START = "ErasureRequested"  # an announcement that starts the erasure state machine, not the bus

# The report as CloudWatch metrics (one point per export, at its time), with their units.
QUALITY_METRICS = {
    "click_through_rate": ("ClickThroughRate", "None"),
    "no_click_rate": ("NoClickRate", "None"),
    "no_results_rate": ("NoResultsRate", "None"),
    "mean_reciprocal_rank": ("MeanReciprocalRank", "None"),
    "mean_click_position": ("MeanClickPosition", "None"),
    "irrelevant_rate": ("IrrelevantRate", "None"),
    "payload_search_rate": ("PayloadSearchRate", "None"),
    "median_time_to_first_click_ms": ("MedianTimeToFirstClick", "Milliseconds"),
    "sessions": ("ExportedSessions", "Count"),
    "clicks": ("ExportedClicks", "Count"),
}


@dataclass(frozen=True)
class Announcement:
    detail_type: str
    detail: dict[str, Any]


def _release(release_id: str, batch_id: str, released_at: int, session_count: int) -> Announcement:
    detail = {
        "release_id": release_id,
        "batch_id": batch_id,
        "released_at": released_at,
        "session_count": session_count,
    }
    return Announcement("BatchReleased", detail)


def _export(
    release_id: str,
    batch_id: str,
    lake: Lake,
    counts: tuple[Any, Any],
    reports: tuple[str | None, Mapping[str, str]],
    *,
    judged: bool,
) -> Announcement:
    """`reports`: the quality report and the experiments' sums; `judged`: the dataset has judgments (those
    exported before judgments were fitted have none)."""
    metrics, experiment_sums = reports
    detail = {
        "release_id": release_id,
        "batch_id": batch_id,
        "manifest": lake.uri(manifest_key(batch_id)),
        "judgments": lake.uri(judgments_key(batch_id)) if judged else None,
        "session_count": counts[0],
        "event_count": counts[1],
        "metrics": json.loads(metrics or "{}"),
        "experiments": report_of_recorded(experiment_sums),
    }
    return Announcement("BatchExported", detail)


def released(change: StoredChange) -> Announcement | None:
    if not isinstance(change, ReleaseChange) or change.new.session_count is None:
        return None
    if change.old is not None and change.old.session_count is not None:
        return None  # announced when it was first settled
    new = change.new
    return _release(new.release_id, new.batch_id, new.released_at, change.new.session_count)


def exported(change: StoredChange, lake: Lake) -> Announcement | None:
    if not isinstance(change, BatchChange) or change.new.dataset.status != "exported":
        return None
    if change.old is not None and change.old.dataset.status == "exported":
        return None
    new, dataset = change.new, change.new.dataset
    counts = (dataset.session_count, dataset.event_count)
    reports = (dataset.metrics, dataset.experiment_sums)
    return _export(new.release_id, new.batch_id, lake, counts, reports, judged=recorded(dataset.judgments))


def task_pending(change: StoredChange) -> Announcement | None:
    """A task that became pending: stored new, or scheduled again after its worker completed it."""
    if not isinstance(change, TaskChange) or change.new.status != "pending":
        return None
    if change.old is not None and change.old.status == "pending":
        return None  # still the same pending task (e.g. its time to live was set)
    task = change.new
    pending = StoredTask(task.session_id, task.batch_id, task.session_number, "pending", task.requested_at)
    return Announcement(TASK_MESSAGE, task_view(pending).model_dump())


def erasure_requested(change: StoredChange) -> Announcement | None:
    """An erasure record just stored: its state machine is to be started."""
    if not isinstance(change, ErasureChange) or change.old is not None:
        return None
    return Announcement(ERASURE_START, {"erasure_id": change.new.erasure_id})


def announcements_of(batch: BatchRecord, lake: Lake) -> list[Announcement]:
    """What a batch's record says was announced: its release once settled, its dataset once exported."""
    if batch.session_count is None:
        return []
    said = [_release(batch.release_id, batch.batch_id, batch.released_at, batch.session_count)]
    dataset = batch.dataset
    if dataset.status == "exported":
        counts = (dataset.session_count, dataset.event_count)
        judged = recorded(dataset.judgments)
        reports = (dataset.metrics, dataset.experiment_sums)
        said.append(_export(batch.release_id, batch.batch_id, lake, counts, reports, judged=judged))
    return said


class Outbox:
    def __init__(
        self,
        storage: Stores,
        bus: Bus,
        queue: Queue,
        lake: Lake,
        telemetry: Telemetry,
        *,
        decode: ChangeDecoder,
        erasures: ErasureStarter | None = None,
    ) -> None:
        self._storage = storage
        self._erasures = erasures
        self._decode = decode
        self._bus = bus
        self._queue = queue
        self._lake = lake
        self._telemetry = telemetry

    def relay(self, old: Image | None, new: Image | None) -> Announcement | None:
        """Announce what this change of a batches-table or tasks-table item (its stream images) means, if
        anything."""
        change = self._decode(old, new)
        announcement = released(change) or exported(change, self._lake) or task_pending(change)
        if announcement is None and self._erasures is not None:  # none locally: local/automation.py erases
            announcement = erasure_requested(change)
        if announcement is None:
            return None
        self._say(announcement)
        if isinstance(change, BatchChange) and announcement.detail_type == "BatchExported":
            self._publish_quality(announcement.detail["metrics"], change.new.dataset.exported_at or 0)
        return announcement

    def replay(self, batch_id: str) -> list[Announcement]:
        """Announce a batch's release (and export) again, from its record: after the outbox gave up on a
        change (its dead-letter queue), or for a consumer that missed it. Consumers dedupe, so a repeat is
        harmless; the quality metrics are not published twice."""
        batch = self._storage.batches.get(batch_id)
        if batch is None:
            raise BatchNotFound(batch_id)
        said = announcements_of(batch, self._lake)
        for announcement in said:
            self._say(announcement)
        return said

    def replay_task(self, session_id: str) -> list[Announcement]:
        """Deliver a session's task again if it is pending (a completed one is not sent)."""
        task = self._storage.tasks.get(session_id)
        if task is None:
            raise TaskNotFound(session_id)
        if task.status != "pending":
            return []
        said = Announcement(TASK_MESSAGE, task_view(task).model_dump())
        self._say(said)
        return [said]

    def _say(self, announcement: Announcement) -> None:
        if announcement.detail_type == ERASURE_START and self._erasures is not None:
            self._erasures.start(announcement.detail["erasure_id"])  # False: started already, as wanted
        elif announcement.detail_type == TASK_MESSAGE:
            self._queue.send(announcement.detail)
        else:
            self._bus.put(announcement.detail_type, announcement.detail)

    def _publish_quality(self, metrics: dict[str, Any], at: int) -> None:
        values = {
            name: (float(metrics[key]), unit)
            for key, (name, unit) in QUALITY_METRICS.items()
            if isinstance(metrics.get(key), int | float)
        }
        self._telemetry.gauges(values, at)
