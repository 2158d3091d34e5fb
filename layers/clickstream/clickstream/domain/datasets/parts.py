"""One range of a dataset (contract 7.2, 7.3): its sessions with all their events as gzip JSON Lines, and
its share of the quality report, the experiments' sums and the judgment counts.

The range's sessions come from a `SessionSource`: the export reads them from DynamoDB (`StoredRange`: in
ascending number, the batch's shards merged, their events a wave at a time); an erasure's rewrite reads
them from the range's own parts (domain/datasets/rewrite.py). Either way one aggregation counts them, and
they are streamed into a gzip file on local disk, so memory holds one wave of sessions, not the range.
A part closes at 256 MB uncompressed and the range goes on in the next. Each part is uploaded under a
name fixed by its range, with gzip's timestamp zeroed, so a range written again (a retried or redriven
worker) replaces its parts with the same bytes. The range's summary is written last: the finish step
counts a range as done when its summary exists.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, Protocol

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
from clickstream.records import StoredEvent, StoredSession
from clickstream.views import render_session

_READ_AHEAD = 256  # sessions a shard read asks for at a time
RANGE_LISTS = ("first-clicks", "no-click-queries", "no-results-queries", JUDGMENT_COUNTS)


@dataclass(frozen=True)
class ExportJob:
    """What the export's plan hands every range worker."""

    batch_id: str
    release_id: str
    export_id: str
    shards: int
    events_until: int  # the fence: writes accepted before it are in the dataset, later ones were refused
    read_after: int = 0  # the fence plus WRITE_SETTLE_MS: no range is read before (contract 13.5)


@dataclass(frozen=True)
class RangeSession:
    """One session of a range: its line in the part (JSON and a newline), and what the aggregates read of it."""

    line: bytes
    number: int
    session_id: str
    created_at: int
    flags: tuple[bool, bool]  # (is_irrelevant, is_payload_search)
    document: dict[str, Any]  # the search: search_query, search_results, ...
    experiment: str | None  # the tag as JSON text; None when untagged
    events: list[StoredEvent]


class SessionSource(Protocol):
    """Where a range's sessions come from, in ascending number."""

    def sessions(self) -> Iterator[RangeSession]: ...

    def erased(self) -> int:
        """The range's sessions an erasure removed (erased tombstones read); once `sessions` is exhausted."""


@dataclass
class StoredRange:
    """A range's sessions as DynamoDB holds them (the export's source)."""

    context: Context
    job: ExportJob
    number_range: NumberRange
    erased_numbers: list[int] = field(default_factory=list)  # erased tombstones the shard reads met

    def sessions(self) -> Iterator[RangeSession]:
        wave = self.context.fanout.max_concurrency
        sessions = self._stored()
        while chunk := list(islice(sessions, wave)):
            all_events = self.context.fanout.map(
                lambda session: self.context.storage.events.all(session.session_id), chunk
            )
            # Every stored event, whatever its created_at: all were accepted before the fence (contract 13.5).
            for session, events in zip(chunk, all_events, strict=True):
                yield stored_session(session, events)

    def erased(self) -> int:
        # When the merge stops past `last` (or runs out), every shard was read beyond `last`: none is missed.
        return sum(self.number_range.first <= number <= self.number_range.last for number in self.erased_numbers)

    def _stored(self) -> Iterator[StoredSession]:
        stream = sessions_after(
            self.context.storage,
            self.context.fanout,
            self.job.batch_id,
            self.job.shards,
            after_number=self.number_range.first - 1,
            wanted=min(_READ_AHEAD, self.number_range.last - self.number_range.first + 1),
            erased=self.erased_numbers,
        )
        for session in stream:
            if session.session_number > self.number_range.last:
                return
            yield session


def stored_session(session: StoredSession, events: list[StoredEvent]) -> RangeSession:
    return RangeSession(
        line=(render_session(session, events, with_batch_id=True) + "\n").encode("utf-8"),
        number=session.session_number,
        session_id=session.session_id,
        created_at=session.created_at,
        flags=(session.is_irrelevant, session.is_payload_search),
        document=json.loads(session.document),
        experiment=session.experiment,
        events=events,
    )


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
    """Writes one range's parts and report lists into the lake, from its sessions' source. `stored` (a
    rewrite's): part key -> sha256 of the parts the lake holds; a part that comes out the same is not uploaded."""

    lake: Lake
    batch_id: str
    number_range: NumberRange
    source: SessionSource
    stored: Mapping[str, str] | None = None
    aggregate: PartAggregate = field(default_factory=PartAggregate)
    experiments: ExperimentAggregate = field(default_factory=ExperimentAggregate)
    judgments: JudgmentCounter = field(default_factory=JudgmentCounter)
    parts: list[dict[str, Any]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # the keys this writer stored

    def write(self) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="export-") as work:
            folder = Path(work)
            current: _OpenPart | None = None
            for session in self.source.sessions():
                if current is not None and current.size + len(session.line) > MAX_PART_BYTES:
                    self._close(current)
                    current = None
                if current is None:
                    current = self._open(folder, len(self.parts))
                self._add(current, session)
            if current is not None:
                self._close(current)
        self._store_lists()
        summary = {
            "range": self.number_range.index,
            "parts": self.parts,
            "scalars": self._scalars(),
            "experiments": self.experiments.sums(),
            "erased_sessions": self.source.erased(),
        }
        self._put(range_summary_key(self.batch_id, self.number_range.index), _json(summary))
        return summary

    def _open(self, folder: Path, piece: int) -> _OpenPart:
        name = part_name(self.number_range.index, piece)
        path = folder / name
        raw = path.open("wb")
        compressor = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)  # same bytes on every run
        return _OpenPart(name, path, raw, compressor)

    def _add(self, part: _OpenPart, session: RangeSession) -> None:
        part.gzip.write(session.line)
        part.size += len(session.line)
        part.sessions += 1
        part.events += len(session.events)
        part.first_number = part.first_number or session.number
        part.last_number = session.number
        self.aggregate.add(session.document, session.created_at, session.flags, session.events)
        self.experiments.add(session.experiment, session.document, session.events)
        self.judgments.add(session.session_id, session.document, session.flags[1], session.events)

    def _close(self, part: _OpenPart) -> None:
        part.gzip.close()
        part.raw.close()
        sha256 = file_sha256(part.path)
        key = f"{dataset_folder(self.batch_id)}/{part.name}"
        if self.stored is None or self.stored.get(key) != sha256:
            self.lake.put_file(key, part.path)
            self.written.append(key)
        self.parts.append(
            {
                "key": part.name,
                "sessions": part.sessions,
                "events": part.events,
                "bytes": part.path.stat().st_size,
                "sha256": sha256,
                "first_number": part.first_number,
                "last_number": part.last_number,
            }
        )
        part.path.unlink()

    def _scalars(self) -> dict[str, Any]:
        return {**self.aggregate.scalars(), **self.judgments.scalars()}

    def _store_lists(self) -> None:
        """The sorted lists the report and the judgments merge across ranges (too many to add up here)."""
        lists: dict[str, Iterable[Any]] = {
            "first-clicks": sorted(self.aggregate.first_click_delays),
            "no-click-queries": sorted(self.aggregate.no_click_queries.items()),
            "no-results-queries": sorted(self.aggregate.no_results_queries.items()),
            JUDGMENT_COUNTS: (row.as_list() for row in self.judgments.rows()),
        }
        for name, values in lists.items():
            buffer = io.BytesIO()
            with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as stream:  # same bytes every run
                for value in values:
                    stream.write((json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8"))
            self._put(range_list_key(self.batch_id, self.number_range.index, name), buffer.getvalue())

    def _put(self, key: str, data: bytes) -> None:
        self.lake.put_bytes(key, data)
        self.written.append(key)


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
