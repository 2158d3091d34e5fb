"""Where a dataset's objects live in the lake (contract 7.2), and what the export plans."""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_PART_BYTES = 256 * 1024 * 1024  # uncompressed JSON Lines in one part
SCHEMA_VERSION = 1
FORMAT = "jsonl.gz"
JUDGMENT_COUNTS = "judgment-counts"  # the list of a range's judgment counts (`range_list_key`)


def dataset_folder(batch_id: str) -> str:
    return f"sessions/batch_id={batch_id}"


def manifest_key(batch_id: str) -> str:
    return f"{dataset_folder(batch_id)}/manifest.json"


def report_key(batch_id: str) -> str:
    """The batch's report page (contract 16): outside `sessions/`, which Athena reads whole."""
    return f"reports/batch_id={batch_id}/report.html"


def part_name(range_index: int, piece: int) -> str:
    """`part-00000.jsonl.gz` for a range's part; a range larger than one part continues in
    `part-00000-1.jsonl.gz`, `part-00000-2.jsonl.gz`, ..."""
    return f"part-{range_index:05d}{'' if piece == 0 else f'-{piece}'}.{FORMAT}"


def range_of_part(name: str) -> int:
    """The range a part's name says it belongs to (`part_name`'s inverse, for its range)."""
    return int(name.removeprefix("part-").split(".", 1)[0].split("-", 1)[0])


def work_folder(batch_id: str) -> str:
    """The export's own files: outside `sessions/`, which Athena reads whole."""
    return f"exports/batch_id={batch_id}"


def range_summary_key(batch_id: str, range_index: int) -> str:
    return f"{work_folder(batch_id)}/range-{range_index:05d}.json"


def range_list_key(batch_id: str, range_index: int, name: str) -> str:
    """A sorted list a range keeps for the report (first-clicks, no-click-queries, no-results-queries) or
    for the judgments (judgment-counts)."""
    return f"{work_folder(batch_id)}/range-{range_index:05d}.{name}.gz"


def judgments_key(batch_id: str) -> str:
    """The batch's relevance judgments (contract 14.3): beside `sessions/`, a table of their own."""
    return f"judgments/batch_id={batch_id}/judgments.jsonl.gz"


def batch_folders(batch_id: str) -> list[str]:
    """Every folder of the lake that holds objects of the batch (its dataset, judgments, report page and the
    export's work files), each ending with "/" so that no other batch's folder shares the prefix."""
    files = (manifest_key(batch_id), judgments_key(batch_id), report_key(batch_id), range_summary_key(batch_id, 0))
    return [key.rsplit("/", 1)[0] + "/" for key in files]


@dataclass(frozen=True)
class NumberRange:
    """The session numbers first..last of a batch: one worker's share of an export."""

    index: int
    first: int
    last: int


def number_ranges(last_number: int, size: int) -> list[NumberRange]:
    """1..last_number cut into ranges of `size` numbers (gaps included: numbers nobody wrote are skipped)."""
    return [
        NumberRange(index, first, min(first + size - 1, last_number))
        for index, first in enumerate(range(1, last_number + 1, size))
    ]


def range_list(ranges: list[NumberRange]) -> bytes:
    """The plan's list of ranges as the lake keeps it: the export machine's Distributed Map reads its items
    (`{"index", "first", "last"}`) and hands each to a range step (functions/export/app.py reads them)."""
    items = [{"index": item.index, "first": item.first, "last": item.last} for item in ranges]
    return json.dumps(items).encode()
