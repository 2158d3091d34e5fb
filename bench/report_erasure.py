"""The erasure's sections of bench/RESULTS.md: a dataset rewritten without one user (time, memory, what it
reads and writes), what one 15-minute invocation can rewrite, and what an erasure costs in requests."""

from __future__ import annotations

import json
import math
from typing import Any

from bench.report_export import FULL_VCPU_MB
from local.template import ROOT, load_template

FLAT_MB = 16.0  # peaks within this of each other across sizes: memory flat in the dataset's size


def _function(name: str) -> tuple[str, dict[str, Any]]:
    """The rewrite's function (ErasureFunction once it is in the template; the export's range worker before)."""
    resources = load_template()["Resources"]
    chosen = name if name in resources else "ExportFunction"
    properties: dict[str, Any] = resources[chosen]["Properties"]
    return chosen, properties


def _map_concurrency() -> int | None:
    path = ROOT / "statemachines" / "erasure.asl.json"
    if not path.exists():
        return None
    definition = json.loads(path.read_text(encoding="utf-8").replace("${ErasureTimeoutSeconds}", "0"))
    concurrency: int = definition["States"]["Datasets"]["MaxConcurrency"]
    return concurrency


def _deadline_hours() -> int | None:
    parameter = load_template().get("Parameters", {}).get("ErasureDeadlineHours")
    return None if parameter is None else int(parameter["Default"])


def on_paper(erasure: dict[str, Any]) -> dict[str, Any]:
    """CPU per session and per rewrite (the fixed part: judging, the report page) from the smallest and the
    largest run, and the largest dataset one invocation rewrites on the function's vCPU within its timeout."""
    runs = sorted(erasure["runs"].items(), key=lambda item: int(item[0]))
    (small, first), (large, last) = runs[0], runs[-1]
    per_session = (last["first"]["cpu_s"] - first["first"]["cpu_s"]) / (int(large) - int(small))
    fixed = max(0.0, first["first"]["cpu_s"] - per_session * int(small))
    function_id, properties = _function("ErasureFunction")
    memory_mb = properties.get("MemorySize", FULL_VCPU_MB)
    vcpu = min(memory_mb / FULL_VCPU_MB, 6.0)
    timeout = int(properties.get("Timeout", 900))
    grown_mb = last["first"]["peak_rss_mb"] - first["first"]["peak_rss_mb"]
    mb_per_session = max(0.0, grown_mb / (int(large) - int(small)))
    by_memory = (memory_mb - last["first"]["peak_rss_mb"]) / mb_per_session + int(large) if mb_per_session else None
    return {
        "function": function_id,
        "vcpu": vcpu,
        "memory_mb": memory_mb,
        "timeout_s": timeout,
        "cpu_ms_per_1000_sessions": round(per_session * 1_000_000),
        "fixed_cpu_s": round(fixed, 1),
        "largest_sessions": int((timeout * vcpu - fixed) / per_session),
        "kb_per_session": round(mb_per_session * 1000, 2),
        "largest_by_memory": None if by_memory is None else int(by_memory),
        "bytes_per_session": last["first"]["bytes_read"] / int(large),
        "map_concurrency": _map_concurrency(),
        "deadline_hours": _deadline_hours(),
    }


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _row(size: str, build: dict[str, Any], run: dict[str, Any], label: str) -> str:
    left_alone = run["parts"] - run["parts_uploaded"]
    # Run again it finds its rewrite recorded and returns at once: no rate to speak of.
    rate = f"{round(int(size) / run['wall_s']):,}" if run["bytes_read"] else "-"
    cells = [
        f"{int(size):,} ({label})",
        f"{build['ranges']}",
        f"{run['sessions_removed']} / {run['events_removed']}",
        f"{run['parts_uploaded']} / {left_alone}",
        _mb(run["bytes_read"]),
        _mb(run["bytes_written"]),
        f"{run['wall_s']:.1f} s",
        f"{run['cpu_s']:.1f} s",
        rate,
        f"{run['baseline_rss_mb']:.0f} MB",
        f"{run['peak_rss_mb']:.0f} MB",
    ]
    return f"| {' | '.join(cells)} |"


def rewrite_section(erasure: dict[str, Any]) -> list[str]:
    runs = sorted(erasure["runs"].items(), key=lambda item: int(item[0]))
    header = ["Sessions (run)", "Ranges", "Removed sessions / events", "Parts uploaded / left alone", "Read"]
    header += ["Written", "Wall", "CPU", "Sessions/s", "Baseline memory", "Peak memory"]
    lines = [
        "## Erasure: dataset rewrite",
        "",
        f"An exported dataset (one batch, {erasure['clicks_per_session']} clicks a session, ranges of the template's "
        f"`EXPORT_RANGE_SESSIONS`) rewritten without one user who has {erasure['user_sessions']} sessions spread "
        "over every other range, in a fresh process, from a lake folder; then the same rewrite again (a retried "
        "step: it finds its rewrite recorded on the batch and returns at once). How the dataset is built and what "
        "is counted: [docs/benchmarks.md](../docs/benchmarks.md#erasure).",
        "",
        f"| {' | '.join(header)} |",
        "|" + "|".join(["---:"] * len(header)) + "|",
    ]
    for size, build in runs:
        lines += [_row(size, build, build["first"], "rewrite"), _row(size, build, build["again"], "again")]
    peaks = [run["first"]["peak_rss_mb"] for _, run in runs]
    flat = max(peaks) - min(peaks) <= FLAT_MB
    paper = on_paper(erasure)
    growth = (
        f"**not flat**: about {paper['kb_per_session']:g} kB more a session. The ranges are streamed (a part at a "
        "time, a line at a time); what grows is the judge step's (the export's own code: its fit holds the "
        "batch's distinct judgment rows, which this data makes about 10 a session up to half a million "
        "sessions, a worst case; "
        "[docs/benchmarks.md](../docs/benchmarks.md#erasure))."
    )
    flat_text = "flat in the dataset's size (a range is read one part at a time and streamed into its new part)."
    lines += ["", f"Peak memory {min(peaks):.0f}-{max(peaks):.0f} MB across sizes: {flat_text if flat else growth}"]
    return [*lines, "", *_paper_text(paper)]


def _paper_text(paper: dict[str, Any]) -> list[str]:
    per_session_ms = paper["cpu_ms_per_1000_sessions"] / 1000
    largest, by_memory = paper["largest_sessions"], paper["largest_by_memory"]
    fixed = f" plus {paper['fixed_cpu_s']:.1f} s a dataset" if paper["fixed_cpu_s"] >= 0.5 else ""
    lines = [
        f"In AWS, on paper: the rewrite is CPU-bound (it reads about {paper['bytes_per_session']:.0f} bytes of gzip "
        f"a session and writes as much for the parts it changes: seconds of S3 transfer per million sessions), "
        f"{per_session_ms:.2f} ms of CPU a session{fixed}. "
        f"{paper['function']} ({paper['vcpu']:.2g} vCPU, {paper['memory_mb']} MB, {paper['timeout_s']} s timeout) "
        f"rewrites about **{largest:,} sessions** in one invocation on its CPU; a larger batch takes several: the "
        "Rewrite step stops after the range that passes its time budget (the timeout less 3 minutes) and the "
        "machine's RewriteDone loop calls it again, from the next range.",
    ]
    if by_memory is not None and by_memory < largest:
        lines[0] += (
            " The last invocation judges the whole batch: if distinct judgment rows kept growing with sessions as "
            f"in this data, at {paper['kb_per_session']:g} kB a session the judge step "
            f"reaches {paper['memory_mb']} MB at about **{by_memory:,} sessions** (the export's judge step, the "
            "same code at the same memory size, meets the same limit on the same batch)."
        )
    concurrency, deadline = paper["map_concurrency"], paper["deadline_hours"]
    if concurrency and deadline:
        per_batch_min = paper["timeout_s"] / 60
        batches = math.floor(deadline * 60 / per_batch_min) * concurrency
        lines += [
            "",
            f"For `ErasureDeadlineHours` ({deadline} h by default): the Datasets map rewrites {concurrency} batches "
            f"at a time, so even with every batch at the limit ({per_batch_min:.0f} min each) about {batches:,} "
            "affected batches fit in the deadline: with daily batches, years of a user's history. What the deadline "
            "has to cover is the wait for a running export (`ExportNotReady`, retried hourly), not the rewrites.",
        ]
    return lines


def _versions(run: dict[str, Any]) -> dict[str, int]:
    """The Versions step after this rewrite, in S3 requests: one ListObjectVersions per folder of the batch (a
    page holds 1,000 versions), and one DeleteObject per older version, which each key the rewrite put has one
    of (the export's) on a first erasure."""
    from clickstream.domain.datasets.layout import batch_folders

    return {"ListObjectVersions": len(batch_folders("b")), "DeleteObject": run["s3_requests"].get("PutObject", 0)}


def _dollars(s3: dict[str, int], read_units: float, write_units: float) -> float:
    from bench.cost import PRICES

    # S3 bills LIST as a PUT; DELETE is free.
    puts = s3.get("PutObject", 0) + _lists(s3)
    return (
        puts / 1000 * PRICES["s3_per_thousand_puts"]
        + s3.get("GetObject", 0) / 1000 * PRICES["s3_per_thousand_gets"]
        + read_units / 1e6 * PRICES["dynamodb_per_million_read_units"]
        + write_units / 1e6 * PRICES["dynamodb_per_million_write_units"]
    )


def _lists(s3: dict[str, int]) -> int:
    """LIST requests: of an object's versions, or of a prefix's keys."""
    return s3.get("ListObjectVersions", 0) + s3.get("ListObjectsV2", 0)


def _cost_row(label: str, s3: dict[str, int], dynamodb: dict[str, int], units: tuple[float, float]) -> str:
    operations = ", ".join(f"{name} x{count}" if count > 1 else name for name, count in dynamodb.items()) or "-"
    requests = [s3.get("GetObject", 0), s3.get("PutObject", 0), _lists(s3), s3.get("DeleteObject", 0)]
    cells = [label, *(f"{count}" for count in requests), operations, f"{units[0]:g}", f"{units[1]:g}"]
    cells.append(f"${_dollars(s3, *units):.5f}")
    return f"| {' | '.join(cells)} |"


def cost_section(erasure: dict[str, Any]) -> list[str]:
    header = ["Step, per affected batch", "S3 GET", "S3 PUT", "S3 LIST", "S3 DELETE"]
    header += ["DynamoDB requests", "Read units", "Write units", "Cost"]
    lines = [
        "## Erasure: cost per request",
        "",
        "What the erasure's calls on the lake and DynamoDB cost per affected batch, counted on the rewrite runs "
        "above (S3 requests as `S3Lake` issues them for the lake calls counted; DynamoDB requests and capacity "
        "units on dynalite, as the cost section counts them, index writes added). The Versions row is computed "
        "from the rewrite's writes: one listing per replaced key, one older version (the export's) deleted per "
        "key it wrote. us-east-1 list prices of the cost section; S3 DELETE is free, LIST is billed as a PUT.",
        "",
        f"| {' | '.join(header)} |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for size, run in sorted(erasure["runs"].items(), key=lambda item: int(item[0])):
        batch = f"{int(size):,} sessions, {run['ranges']} range{'s' if run['ranges'] > 1 else ''}"
        for name, label in (("first", "Rewrite"), ("again", "Rewrite run again")):
            figures = run[name]
            units = (figures["read_units"], figures["write_units"])
            lines.append(_cost_row(f"{label} ({batch})", figures["s3_requests"], figures["dynamodb_requests"], units))
        lines.append(_cost_row(f"Versions ({batch})", _versions(run["first"]), {}, (0.0, 0.0)))
    return [*lines, *steps_section(erasure.get("steps"))]


def steps_section(steps: dict[str, Any] | None) -> list[str]:
    """One erasure end to end, step by step; then per erased session and per affected batch."""
    if not steps:
        return ["", "The machine's other steps (Begin, Find, Unclaim, Purge, Account, Finish): not in this run."]
    header = ["Step (one erasure)", "S3 GET", "S3 PUT", "S3 LIST", "S3 DELETE"]
    header += ["DynamoDB requests", "Read units", "Write units", "Cost"]
    lines = [
        "",
        f"One erasure end to end (`bench/erasure_steps.py`): the user's {steps['answered']['sessions']} sessions "
        f"in two batches of {steps['batch_sessions']} sessions ({steps['clicks']} clicks each, every other "
        "session scheduled for improvement), the first released and exported, the second collecting; every step "
        "of the machine in order, on dynalite and a lake folder. The Versions step's DELETEs are computed as "
        "above; the `by_user_key` entry each Unclaim removes (1 write unit, not reported by dynalite) is added.",
        "",
        f"| {' | '.join(header)} |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name, figures in steps["steps"].items():
        s3 = dict(figures["s3"])
        if name.startswith("Versions ("):  # one older version of each key its batch's rewrite put
            s3["DeleteObject"] = steps["steps"][name.replace("Versions", "Rewrite", 1)]["s3"].get("PutObject", 0)
        units = (figures["read_units"], figures["write_units"])
        lines.append(_cost_row(name, s3, figures["dynamodb"], units))
    return [*lines, *_per_session_and_batch(steps)]


def _per_session_and_batch(steps: dict[str, Any]) -> list[str]:
    """Units per erased session (Find, Unclaim, Purge over the user's sessions) and per slot Account walks."""
    rows = steps["steps"]
    sessions = steps["answered"]["sessions"]
    per_session = [rows[name] for name in ("Find", "Unclaim", "Purge")]
    read = sum(row["read_units"] for row in per_session) / sessions
    write = sum(row["write_units"] for row in per_session) / sessions
    account = rows.get("Account (released, exported)", {"read_units": 0.0})
    per_slot = account["read_units"] / steps["batch_sessions"]
    return [
        "",
        f"Per erased session (Find, Unclaim and Purge over the user's {sessions} sessions, "
        f"{steps['answered']['events']} events and {steps['answered']['tasks']} tasks): "
        f"**{read:.2f} read units and {write:.2f} write units**, about "
        f"${_dollars({}, read, write) * 1e6:,.0f} per million erased sessions. Per affected released batch, "
        f"Account walks every slot: {per_slot:.2f} read units a slot (a Query is billed by the items' size, not "
        f"what it projects), about {per_slot * 1_000_000:,.0f} for a million-session batch "
        f"(${_dollars({}, per_slot * 1_000_000, 0):.3f}); a collecting batch costs nothing there. Rewrite and "
        "Versions cost what the tables above say per range. Begin, Finish and the request itself are a few units "
        "per erasure.",
    ]
