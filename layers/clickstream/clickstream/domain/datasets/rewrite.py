"""An erasure's rewrite of an exported dataset (contract 17): the same dataset without one user's sessions.

Every range is written again from its own parts in the lake, never from DynamoDB (the batch's items may
have expired under retention): each kept line is copied byte for byte, the user's lines (`user_id` equal
to the id as stored) are dropped, and the range's lists, judgment counts, experiment sums and summary are
recounted from the kept lines by the export's own `RangeWriter`. Then the judgments, the report page and
the manifest are published by the export's own code (publish.py), and the batch record's dataset fields
are recorded once per erasure. A part that comes out the same is not uploaded again; a part the range no
longer needs (its lines moved up into the range's first part) is removed with its versions.

One rewrite of a dataset at a time: the erasure holds the batch record while it works (two at once would
each write back the other's user). Repeatable after a crash at any point: the lines already dropped are not
found again, a line read twice (moved to an earlier part by the crashed run) is read once, and the counts
come from what the parts hold against what the record (written last) still says.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from clickstream.domain.context import Context
from clickstream.domain.datasets.layout import (
    NumberRange,
    batch_folders,
    dataset_folder,
    judgments_key,
    manifest_key,
    range_of_part,
    report_key,
    work_folder,
)
from clickstream.domain.datasets.parts import RangeSession, RangeWriter
from clickstream.domain.datasets.publish import Publisher
from clickstream.domain.datasets.retention import items_expired
from clickstream.domain.ports import Lake, ReportPages
from clickstream.errors import ExportNotReady
from clickstream.records import BatchRecord, StoredEvent

REWRITE_STALE_MS = 20 * 60_000  # a rewrite holding a dataset this long died (a Lambda runs 15 minutes at most)
# The manifest's members that say what the export was: kept as they are (the counts and reports follow).
_HEAD = ("schema_version", "release_id", "batch_id", "released_at", "exported_at", "events_until", "late_writes")


@dataclass(frozen=True)
class Rewritten:
    """What a rewrite removed (0, 0 when run again), and every lake key whose older versions may hold the
    user: each object it wrote, and every part of the dataset (a part written by a retried export keeps
    older copies too). A part it removed went with all its versions at once (`Lake.remove`)."""

    sessions_removed: int
    events_removed: int
    replaced_keys: list[str]
    done: bool = True  # False: stopped at its time limit, to be called again


@dataclass
class PartLines:
    """A range's sessions as its parts hold them (the rewrite's `SessionSource`): every line but the user's."""

    lake: Lake
    keys: list[str]
    stored_user_id: str
    folder: Path
    dropped: int = 0  # the user's lines met (none on a run again)

    def sessions(self) -> Iterator[RangeSession]:
        last_number = 0
        for piece, key in enumerate(self.keys):
            path = self.folder / f"read-{piece}.jsonl.gz"
            if not self.lake.fetch(key, path):
                continue  # removed by an earlier run of this rewrite: its lines had moved up (read below)
            with gzip.open(path, "rb") as stream:
                for line in stream:
                    session = json.loads(line)
                    if session["session_number"] <= last_number:
                        continue  # an earlier run moved it to an earlier part of the range: read there already
                    last_number = session["session_number"]
                    if session.get("user_id") == self.stored_user_id:
                        self.dropped += 1
                        continue
                    yield line_session(line, session)
            path.unlink()

    def erased(self) -> int:
        # Parts hold no tombstones. What an erasure took out is counted at the dataset's level: the manifest's
        # session_count + erased_sessions never changes (a per-range count would differ on a run again).
        return 0


def line_session(line: bytes, session: dict[str, Any]) -> RangeSession:
    """A part's line as the aggregates read it (the line's members include the search document's)."""
    events = [
        StoredEvent(
            event["event_id"],
            event["object_id"],
            event["event_type"],
            event["created_at"],
            None if event["meta"] is None else json.dumps(event["meta"], ensure_ascii=False),
        )
        for event in session["events"]
    ]
    experiment = session.get("experiment")
    return RangeSession(
        line=line,
        number=session["session_number"],
        session_id=session["session_id"],
        created_at=session["created_at"],
        flags=(session["is_irrelevant"], session["is_payload_search"]),
        document=session,
        experiment=None if experiment is None else json.dumps(experiment, ensure_ascii=False),
        events=events,
    )


class DatasetRewriter:
    def __init__(self, context: Context, lake: Lake, pages: ReportPages) -> None:
        self._context = context
        self._storage = context.storage
        self._lake = lake
        self._publisher = Publisher(context, lake, pages)

    def rewrite(
        self,
        batch_id: str,
        stored_user_id: str,
        erasure_id: str,
        stop_at: int | None = None,
        account_removed: bool | None = None,
    ) -> Rewritten:
        """The batch's dataset without the lines of `stored_user_id`; nothing when it is not exported (a later
        export reads DynamoDB, where the user is gone); ExportNotReady while it is being exported or another
        erasure rewrites it (retried). A dataset whose export failed, or whose manifest the bucket's retention
        rule has expired, loses what is left of it (a new export writes a failed one again from DynamoDB).

        With `stop_at` (epoch ms) it stops after the first range that ends later and says `done=False`: called
        again, it goes on from the next range (a batch too large for one invocation takes several).
        `account_removed`: whether the removed sessions move from session_count to erased_sessions here (the
        erasure's Account step could not count the batch's slots: its items had expired); by default, when
        the items have expired by now."""
        record = self._storage.batches.get(batch_id)
        if record is not None and record.dataset.status == "exporting":
            raise ExportNotReady(f"batch {batch_id} is being exported: its dataset is rewritten once it exists")
        if record is None or record.dataset.status not in ("exported", "failed") or erasure_id in record.erasures:
            return Rewritten(0, 0, [])  # no dataset; or this erasure's rewrite is recorded already
        now = self._context.clock()
        if not self._storage.batches.hold_rewrite(batch_id, erasure_id, now, now - REWRITE_STALE_MS):
            raise ExportNotReady(f"another erasure is rewriting batch {batch_id}")
        old = self._manifest(batch_id) if record.dataset.status == "exported" else None
        if old is None:  # held, so no export starts while it goes
            removed = self._remove_leftovers(batch_id)
            self._storage.batches.release_rewrite(batch_id, erasure_id)
            return Rewritten(0, 0, removed)
        ranges = _ranges_of(old)
        with tempfile.TemporaryDirectory(prefix="rewrite-") as work:
            start = self._progress(batch_id, erasure_id)
            done, written = self._rewrite_ranges(old, ranges, stored_user_id, Path(work), start=start, stop_at=stop_at)
        if done < len(ranges):
            progress = {"erasure_id": erasure_id, "ranges": done}
            self._lake.put_bytes(_progress_key(batch_id), json.dumps(progress).encode())
            return Rewritten(0, 0, sorted(written), done=False)
        if account_removed is None:
            account_removed = items_expired(record, self._context.settings.retention_days, now)
        rewritten = self._publish(old, len(ranges), erasure_id, account_removed)
        return replace(rewritten, replaced_keys=sorted({*rewritten.replaced_keys, *written}))

    def _publish(self, old: dict[str, Any], ranges: int, erasure_id: str, account_removed: bool) -> Rewritten:
        """Every range rewritten: the judgments, the report page, the manifest and the batch record."""
        batch_id = old["batch_id"]
        record = self._storage.batches.get(batch_id)
        if record is None:
            raise ExportNotReady(f"batch {batch_id} has no record")
        summaries = self._publisher.summaries(batch_id, ranges)
        new_parts = {f"{dataset_folder(batch_id)}/{part['key']}" for summary in summaries for part in summary["parts"]}
        judged = self._publisher.judge(batch_id, len(summaries))
        kept = sum(part["sessions"] for summary in summaries for part in summary["parts"])
        erased = old["session_count"] + old.get("erased_sessions", 0) - kept  # their sum never changes
        head = {name: old[name] for name in _HEAD if name in old}
        published = self._publisher.publish(head, summaries, judged, erased)
        self._lake.remove(_progress_key(batch_id))  # before the record: a crash in between starts over, harmlessly
        removed, events_removed = _removed(record, erasure_id, published.manifest)
        dataset = replace(published.dataset, export_id=record.dataset.export_id)
        if not self._storage.batches.rewrite_dataset(batch_id, dataset, erasure_id, removed if account_removed else 0):
            raise ExportNotReady(f"batch {batch_id}: the rewrite of erasure {erasure_id} no longer holds it")
        replaced = {*new_parts, judgments_key(batch_id), report_key(batch_id), manifest_key(batch_id)}
        return Rewritten(removed, events_removed, sorted(replaced))

    def _progress(self, batch_id: str, erasure_id: str) -> int:
        """The ranges this erasure rewrote in its earlier invocations (another erasure's progress is not ours:
        it held the dataset before us and died; rewriting a range again is harmless)."""
        data = self._lake.get_bytes(_progress_key(batch_id))
        progress = json.loads(data) if data is not None else {}
        return int(progress["ranges"]) if progress.get("erasure_id") == erasure_id else 0

    def _remove_leftovers(self, batch_id: str) -> list[str]:
        removed = [key for folder in batch_folders(batch_id) for key in self._lake.keys(folder)]
        for key in removed:
            self._lake.remove(key)  # with every version
        return removed

    def _manifest(self, batch_id: str) -> dict[str, Any] | None:
        """The dataset's manifest; None once the bucket's retention rule has expired it."""
        data = self._lake.get_bytes(manifest_key(batch_id))
        manifest: dict[str, Any] | None = None if data is None else json.loads(data)
        return manifest

    def _rewrite_ranges(
        self,
        old: dict[str, Any],
        ranges: dict[int, list[dict[str, Any]]],
        stored_user_id: str,
        folder: Path,
        *,
        start: int,
        stop_at: int | None,
    ) -> tuple[int, list[str]]:
        """The ranges from `start` written again from their parts, until `stop_at` has passed (at least one):
        how many ranges are done, and the keys written."""
        batch_id = old["batch_id"]
        stored = {f"{dataset_folder(batch_id)}/{part['key']}": part["sha256"] for part in old["parts"]}
        written: list[str] = []
        for index in range(start, len(ranges)):
            parts = ranges[index]  # a range with no part has no line: its lists are empty
            keys = [f"{dataset_folder(batch_id)}/{part['key']}" for part in parts]
            first = min((part["first_number"] for part in parts), default=0)
            last = max((part["last_number"] for part in parts), default=0)
            source = PartLines(self._lake, keys, stored_user_id, folder)
            writer = RangeWriter(self._lake, batch_id, NumberRange(index, first, last), source, stored=stored)
            summary = writer.write()
            written += writer.written
            # Pieces whose lines moved up into the range's first parts go now, not at the end: a reader of the
            # folder never sees a session twice, even while a large batch takes several invocations.
            kept = {f"{dataset_folder(batch_id)}/{part['key']}" for part in summary["parts"]}
            for key in sorted(set(keys) - kept):
                self._lake.remove(key)  # with every version
            if stop_at is not None and self._context.clock() >= stop_at:
                return index + 1, written
        return len(ranges), written


def _ranges_of(manifest: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """The manifest's parts by the range they belong to, every range up to the last one that has a part."""
    by_range: dict[int, list[dict[str, Any]]] = {}
    for part in manifest["parts"]:
        by_range.setdefault(range_of_part(part["key"]), []).append(part)
    return {index: by_range.get(index, []) for index in range(max(by_range, default=0) + 1)}


def _progress_key(batch_id: str) -> str:
    return f"{work_folder(batch_id)}/rewrite-progress.json"


def _removed(record: BatchRecord, erasure_id: str, manifest: dict[str, Any]) -> tuple[int, int]:
    """Sessions and events this erasure removed: what the record (written last, once per erasure) counted
    before, less what the parts hold now; none when the record says this erasure is recorded already."""
    if erasure_id in record.erasures:
        return 0, 0
    sessions = (record.dataset.session_count or 0) - manifest["session_count"]
    events = (record.dataset.event_count or 0) - manifest["event_count"]
    return sessions, events
