"""The judge step of an export (contract 14): the ranges' judgment counts merged, the click models fitted
on them, and the batch's judgments written, before the manifest (which lists them) is.

The counts lists are streamed together (`merge_rows`), so the fit holds the distinct keys, not the
batch. The judgments are gzip with its timestamp zeroed, under a fixed name: a judge step run again (a
retry, a redrive) writes the same bytes.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clickstream.domain.datasets.layout import judgments_key
from clickstream.domain.datasets.parts import file_sha256
from clickstream.domain.judgments.counting import CountRow, merge_rows
from clickstream.domain.ports import Lake


def _rows(path: Path) -> Iterator[CountRow]:
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        for line in stream:
            yield CountRow.from_list(json.loads(line))


def publish_judgments(
    lake: Lake, batch_id: str, count_lists: list[Path], totals: dict[str, Any], folder: Path
) -> dict[str, Any]:
    """Fit, write `judgments/batch_id=<id>/judgments.jsonl.gz` (by way of `folder`); what the manifest says
    of them, and the fit's `click_model`."""
    from clickstream.domain.judgments.models import fit_click_models  # noqa: PLC0415 numpy: only this step loads it

    fit = fit_click_models(
        merge_rows(_rows(path) for path in count_lists),
        sessions=totals.get("judged_sessions", 0),
        held_out_sessions=totals.get("judged_held_out_sessions", 0),
    )
    path = folder / "judgments.jsonl.gz"
    pairs = 0
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as stream:
        previous: tuple[str, str] | None = None
        for judgment in fit.judgments():
            pair = (judgment["query"], judgment["object_id"])
            if previous is not None and pair <= previous:
                raise ValueError(f"judgments out of order: {pair!r} after {previous!r}")
            previous = pair
            stream.write((json.dumps(judgment, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
            pairs += 1
    key = judgments_key(batch_id)
    lake.put_file(key, path)
    judgments = {"uri": lake.uri(key), "pairs": pairs, "bytes": path.stat().st_size, "sha256": file_sha256(path)}
    return {"judgments": judgments, "click_model": fit.click_model}
