"""One range of an export (contract 7.2, 7.3): its sessions with all their events as gzip JSON Lines, and
its share of the quality report.

A range's sessions are read in ascending number (the batch's shards merged), their events a wave at a
time, and streamed into a gzip file on local disk, so memory holds one wave of sessions, not the range.
A part closes at 256 MB uncompressed and the range goes on in the next. Each part is uploaded under a
name fixed by its range, with gzip's timestamp zeroed, so a range written again (a retried or redriven
worker) replaces its parts with the same bytes. The range's summary is written last: the finish step
counts a range as done when its summary exists.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

from clickstream.domain.context import Context
from clickstream.domain.datasets.experiments import ExperimentAggregate
from clickstream.domain.datasets.layout import (
    JUDGMENT_COUNTS,
    MAX_PART_BYTES,
    NumberRange,
    dataset_folder,
    part_name,
    range_list_key,
    range_summary_key,
)
from clickstream.domain.datasets.metrics import PartAggregate
from clickstream.domain.judgments.counting import JudgmentCounter
from clickstream.domain.ports import Lake
from clickstream.domain.shards import sessions_after
from clickstream.errors import ExportNotReady
from clickstream.records import StoredEvent, StoredSession
from clickstream.views import render_session

_READ_AHEAD = 256  # sessions a shard read asks for at a time


@dataclass(frozen=True)
class ExportJob:
    """What the export's plan hands every range worker."""

    batch_id: str
    release_id: str
    export_id: str
    shards: int
    events_until: int  # the fence: writes accepted before it are in the dataset, later ones were refused
    read_after: int = 0  # the fence plus WRITE_SETTLE_MS: no range is read before (contract 13.5)


@dataclass
class _OpenPart:
    name: str
    path: Path
    raw: IO[bytes]
    gzip: gzip.GzipFile
    sessions: int = 0
    events: int = 0
    size: int = 0
    first_number: int = 0
    last_number: int = 0


@dataclass
class RangeWriter:
    """Writes one range's parts and report lists into the lake."""

    context: Context
    lake: Lake
    job: ExportJob
    number_range: NumberRange
    aggregate: PartAggregate = field(default_factory=PartAggregate)
    experiments: ExperimentAggregate = field(default_factory=ExperimentAggregate)
    judgments: JudgmentCounter = field(default_factory=JudgmentCounter)
    parts: list[dict[str, Any]] = field(default_factory=list)

    def write(self) -> dict[str, Any]:
        if self.context.clock() < self.job.read_after:
            raise ExportNotReady(f"batch {self.job.batch_id} is read from {self.job.read_after}: writes may be landing")
        with tempfile.TemporaryDirectory(prefix="export-") as work:
            folder = Path(work)
            current: _OpenPart | None = None
            for session, events in self._sessions_with_events():
                line = (render_session(session, events, with_batch_id=True) + "\n").encode("utf-8")
                if current is not None and current.size + len(line) > MAX_PART_BYTES:
                    self._close(current)
                    current = None
                if current is None:
                    current = self._open(folder, len(self.parts))
                self._add(current, session, events, line)
            if current is not None:
                self._close(current)
            self._store_lists(folder)
        summary = {
            "range": self.number_range.index,
            "parts": self.parts,
            "scalars": self._scalars(),
            "experiments": self.experiments.sums(),
        }
        self.lake.put_bytes(range_summary_key(self.job.batch_id, self.number_range.index), _json(summary))
        return summary

    def _sessions_with_events(self) -> Iterator[tuple[StoredSession, list[StoredEvent]]]:
        wave = self.context.fanout.max_concurrency
        sessions = self._sessions()
        while chunk := list(islice(sessions, wave)):
            all_events = self.context.fanout.map(
                lambda session: self.context.storage.events.all(session.session_id), chunk
            )
            # Every stored event, whatever its created_at: all were accepted before the fence (contract 13.5).
            yield from zip(chunk, all_events, strict=True)

    def _sessions(self) -> Iterator[StoredSession]:
        stream = sessions_after(
            self.context.storage,
            self.context.fanout,
            self.job.batch_id,
            self.job.shards,
            after_number=self.number_range.first - 1,
            wanted=min(_READ_AHEAD, self.number_range.last - self.number_range.first + 1),
        )
        for session in stream:
            if session.session_number > self.number_range.last:
                return
            yield session

    def _open(self, folder: Path, piece: int) -> _OpenPart:
        name = part_name(self.number_range.index, piece)
        path = folder / name
        raw = path.open("wb")
        compressor = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)  # same bytes on every run
        return _OpenPart(name, path, raw, compressor)

    def _add(self, part: _OpenPart, session: StoredSession, events: list[StoredEvent], line: bytes) -> None:
        part.gzip.write(line)
        part.size += len(line)
        part.sessions += 1
        part.events += len(events)
        part.first_number = part.first_number or session.session_number
        part.last_number = session.session_number
        flags = (session.is_irrelevant, session.is_payload_search)
        document = json.loads(session.document)
        self.aggregate.add(document, session.created_at, flags, events)
        self.experiments.add(session.experiment, document, events)
        self.judgments.add(session.session_id, document, session.is_payload_search, events)

    def _close(self, part: _OpenPart) -> None:
        part.gzip.close()
        part.raw.close()
        self.lake.put_file(f"{dataset_folder(self.job.batch_id)}/{part.name}", part.path)
        self.parts.append(
            {
                "key": part.name,
                "sessions": part.sessions,
                "events": part.events,
                "bytes": part.path.stat().st_size,
                "sha256": file_sha256(part.path),
                "first_number": part.first_number,
                "last_number": part.last_number,
            }
        )
        part.path.unlink()

    def _scalars(self) -> dict[str, Any]:
        return {**self.aggregate.scalars(), **self.judgments.scalars()}

    def _store_lists(self, folder: Path) -> None:
        """The sorted lists the report and the judgments merge across ranges (too many to add up here)."""
        lists: dict[str, Iterable[Any]] = {
            "first-clicks": sorted(self.aggregate.first_click_delays),
            "no-click-queries": sorted(self.aggregate.no_click_queries.items()),
            "no-results-queries": sorted(self.aggregate.no_results_queries.items()),
            JUDGMENT_COUNTS: (row.as_list() for row in self.judgments.rows()),
        }
        for name, values in lists.items():
            path = folder / f"{name}.gz"
            with gzip.open(path, "wt", encoding="utf-8") as stream:
                stream.writelines(json.dumps(value, ensure_ascii=False) + "\n" for value in values)
            self.lake.put_file(range_list_key(self.job.batch_id, self.number_range.index, name), path)


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
