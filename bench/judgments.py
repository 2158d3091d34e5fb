"""Judgments at scale (SPEC 14.5): simulated batches with a known position bias, judged as the export's judge
step judges them, in a fresh process per size.

The parent simulates a batch (tests/support/click_simulator.py: 2,000 queries of Zipf popularity, 20
candidates each, 10 positions, examination 1/position^0.8, half the sessions' rankings perturbed) and writes
its merged count rows as the export stores them (gzip JSON Lines, one array a line). The child reads that
stream into `fit_click_models` and writes the judgments file; its CPU time and peak resident memory are the
judge step's. The parent then compares the fit with the truth: the examination curve's largest error, and
every model's held-out log-likelihood against the true model's on the same held-out sessions.

    python -m bench.judgments judge <rows.jsonl.gz> <sessions> <held_out_sessions> <judgments.jsonl.gz>
"""

from __future__ import annotations

import gzip
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.child import run_child

QUERIES = 2_000


def _write_rows(batch: Any, path: Path) -> int:
    rows = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as stream:
        for row in batch.count_rows():
            fields = [
                row.query,
                row.object_id,
                row.position,
                row.previous_click,
                row.held_out,
                row.impressions,
                row.clicks,
            ]
            stream.write(json.dumps(fields, separators=(",", ":")) + "\n")
            rows += 1
    return rows


def peak_resident_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: a child started by subprocess inherits
    its parent's ru_maxrss across exec (here the parent holds the simulated batch)."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def judge(rows_path: Path, sessions: int, held_out_sessions: int, judgments_path: Path) -> dict[str, Any]:
    """The judge step: read the merged rows, fit, write the judgments. Its own CPU time and memory."""
    from clickstream.domain.judgments.counting import CountRow
    from clickstream.domain.judgments.models import fit_click_models

    started_cpu, started = time.process_time(), time.perf_counter()

    def rows() -> Any:
        with gzip.open(rows_path, "rt", encoding="utf-8") as stream:
            for line in stream:
                query, object_id, position, previous_click, held_out, impressions, clicks = json.loads(line)
                yield CountRow(query, object_id, position, previous_click, held_out, impressions, clicks)

    fit = fit_click_models(rows(), sessions=sessions, held_out_sessions=held_out_sessions)
    fitted_cpu = time.process_time()
    pairs = 0
    with gzip.open(judgments_path, "wt", encoding="utf-8") as stream:
        for line in fit.judgments():
            stream.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
            pairs += 1
    return {
        "cpu_s": round(time.process_time() - started_cpu, 2),
        "fit_cpu_s": round(fitted_cpu - started_cpu, 2),
        "wall_s": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(peak_resident_mb(), 1),
        "pairs": pairs,
        "judgments_bytes": judgments_path.stat().st_size,
        "click_model": fit.click_model,
    }


def _run(size: int, work: Path) -> dict[str, Any]:
    import numpy as np

    from tests.support.click_simulator import make_world, simulate

    world = make_world(queries=QUERIES)
    started = time.process_time()
    batch = simulate(world, size)
    simulated = time.process_time()
    rows_path, judgments_path = work / f"rows-{size}.jsonl.gz", work / f"judgments-{size}.jsonl.gz"
    rows = _write_rows(batch, rows_path)
    arguments = [str(rows_path), str(batch.sessions), str(batch.held_out_sessions), str(judgments_path)]
    figures: dict[str, Any] = run_child("bench.judgments", "judge", *arguments)
    click_model = figures.pop("click_model")
    examination = click_model["examination"]
    fitted_curve = np.array([examination[str(position)] for position in range(1, world.list_length + 1)])
    true_log_likelihood = batch.true_log_likelihood()
    models = click_model["held_out"]["models"]
    return {
        "sessions": batch.sessions,
        "held_out_sessions": batch.held_out_sessions,
        "impressions": click_model["impressions"],
        "distinct_rows": rows,
        "simulate_s": round(simulated - started, 2),
        **figures,
        "iterations": click_model["iterations"],
        "converged": click_model["converged"],
        "examination_max_error": round(float(np.max(np.abs(fitted_curve - world.examination[:, 0]))), 4),
        "true_log_likelihood": round(true_log_likelihood, 6),
        "log_likelihood": {name: model["log_likelihood"] for name, model in models.items()},
        "gap_to_truth": {
            name: round(true_log_likelihood - model["log_likelihood"], 6) for name, model in models.items()
        },
        "perplexity": {name: model["perplexity"] for name, model in models.items()},
    }


def measure(sizes: list[int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        runs = {str(size): _run(size, Path(work)) for size in sizes}
    return {"queries": QUERIES, "candidates": 20, "positions": 10, "runs": runs}


if __name__ == "__main__":  # python -m bench.judgments judge <rows> <sessions> <held out> <judgments>
    _, command, rows_path, sessions, held_out, judgments_path = sys.argv
    assert command == "judge", command
    print(json.dumps(judge(Path(rows_path), int(sessions), int(held_out), Path(judgments_path))), flush=True)
