"""The export section of bench/RESULTS.md: throughput of one worker, memory by batch size, and AWS on paper."""

from __future__ import annotations

import json
from typing import Any

from local.template import ROOT, load_template

FULL_VCPU_MB = 1769  # Lambda gives a function one full vCPU at this memory size


def _export_function_vcpu() -> float:
    memory_mb: int = load_template()["Resources"]["ExportFunction"]["Properties"]["MemorySize"]
    return min(memory_mb / FULL_VCPU_MB, 6.0)


def _map_concurrency() -> int:
    definition = json.loads((ROOT / "statemachines" / "export.asl.json").read_text(encoding="utf-8"))
    concurrency: int = definition["States"]["WriteRanges"]["MaxConcurrency"]
    return concurrency


LAMBDA_VCPU = _export_function_vcpu()
MAP_CONCURRENCY = _map_concurrency()
NEW_TABLE_READ_UNITS = 12_000  # a new on-demand table's initial read throughput


def aws_on_paper(export: dict[str, Any]) -> dict[str, float]:
    """Sessions a second in AWS: one worker is CPU-bound (its DynamoDB reads overlap on 64 threads), so
    its rate is what its measured CPU time allows on one vCPU; the map runs MAP_CONCURRENCY of them."""
    largest = export["runs"][max(export["runs"], key=int)]
    per_worker = LAMBDA_VCPU * 1_000_000 / largest["cpu_ms_per_1000_sessions"]
    return {"per_worker": round(per_worker), "parallel": round(per_worker * MAP_CONCURRENCY)}


def export_read_units_per_session(cost: dict[str, Any] | None) -> float | None:
    """Read units the export spends a session, from the cost run (which exports its batch on dynalite)."""
    if not cost:
        return None
    routes = [figures for name, figures in cost["routes"].items() if name.startswith("export")]
    if not routes:
        return None
    units: float = sum(figures["read_units_per_call"] * figures["calls"] for figures in routes)
    sessions: int = cost["sessions_measured"]
    return units / sessions


def export_section(export: dict[str, Any], cost: dict[str, Any] | None = None) -> list[str]:
    runs = export["runs"]
    paper = aws_on_paper(export)
    lines = [
        "## Export",
        "",
        f"A released batch exported by its steps (plan, ranges one after another as one worker, finish) in a "
        f"child process, into a folder, from dynalite; {export['clicks_per_session']} clicks a session, ranges "
        f"of {export['range_sessions']:,} numbers (`EXPORT_RANGE_SESSIONS`). Peak memory is the worker "
        "process's maximum resident set (it includes Python, boto3 and the layer: the baseline column).",
        "",
        "| Sessions | Ranges | Parts | Dataset (gzip) | Ranges written in | Sessions/s (one worker) "
        "| CPU per 1,000 sessions | Baseline memory | Peak memory |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, run in sorted(runs.items(), key=lambda item: int(item[0])):
        lines.append(
            f"| {int(size):,} | {run['ranges']} | {run['parts']} | {run['compressed_bytes'] / 1e6:.1f} MB "
            f"| {run['ranges_s']:.1f} s | {run['sessions_per_s']:,} | {run['cpu_ms_per_1000_sessions']:,} ms "
            f"| {run['baseline_rss_mb']:.0f} MB | {run['peak_rss_mb']:.0f} MB |"
        )
    peaks = [run["peak_rss_mb"] for run in runs.values()]
    lines += [
        "",
        f"Peak memory across batch sizes: {min(peaks):.0f}-{max(peaks):.0f} MB: flat, as each worker streams "
        "its range (a wave of 64 sessions at a time into a gzip file on disk) and finish merges sorted files.",
        "",
        f"In AWS, on paper: a worker is CPU-bound (its reads overlap on 64 threads; here too its CPU time "
        f"is most of its wall time), so one worker ({LAMBDA_VCPU:.2g} vCPU at ExportFunction's memory) writes "
        "about "
        f"{paper['per_worker']:,} sessions/s, and the Distributed Map's {MAP_CONCURRENCY} workers about "
        f"{paper['parallel']:,} sessions/s: a million sessions in about "
        f"{1_000_000 / paper['parallel'] / 60:.1f} min after the delay, ten million in about "
        f"{10_000_000 / paper['parallel'] / 60:.0f} min.",
    ]
    units = export_read_units_per_session(cost)
    if units is not None:
        rate = units * paper["parallel"]
        against = "more than" if rate > NEW_TABLE_READ_UNITS else "within"
        lines += [
            "",
            f"Each session costs the export about {units:.2f} read units (its events in one strongly consistent "
            f"Query, and its share of the shard pages; measured by the cost run), so {MAP_CONCURRENCY} workers "
            f"read about {rate:,.0f} units a second: {against} the {NEW_TABLE_READ_UNITS:,} a new on-demand "
            "table serves at first (it then adapts to twice its previous peak). Throttled reads are retried by "
            "the worker and then by the map's retry policy; `MaxConcurrency` of `WriteRanges` in "
            "`statemachines/export.asl.json` is the knob that trades export time for read rate.",
        ]
    return lines
