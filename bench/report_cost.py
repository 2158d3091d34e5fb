"""The cost section of bench/RESULTS.md: one million sessions at AWS list prices, by part."""

from __future__ import annotations

from typing import Any


def _dollars(value: float) -> str:
    return f"${value:,.2f}"


def cost_section(cost: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    million = cost["per_million"]
    old = (before or {}).get("per_million")
    lines = [
        "## Cost per million sessions",
        "",
        f"Each session registered, with 3 click events (one call), paged once (pages of 100), half of them "
        f"scheduled for improvement, the batch released and exported; measured on {cost['sessions_measured']:,} "
        "sessions through the real handlers on dynalite (capacity units as DynamoDB reports them, index writes "
        "added, a failed conditional write billed 1 unit), durations as measured here (this machine, not "
        "Lambda's arm64) at each function's configured memory, scaled to a million. S3 requests, Step Functions "
        "transitions and EventBridge events are counted for one release of a million-session batch (ranges of "
        "20,000); the dataset's storage is a month's. Not included: Athena queries ($5 per TB scanned: a full "
        f"scan of this dataset, {cost['per_million'].get('dataset_mb', 0):,} MB, costs "
        f"${cost['per_million'].get('dataset_mb', 0) / 1e6 * 5:.4f}). us-east-1 on-demand list prices as of "
        f"{cost['prices_date']}: " + ", ".join(f"`{name}` {value:g}" for name, value in cost["prices"].items()) + ".",
        "",
        "| Part | " + ("Before | " if old else "") + "Cost |",
        "|---|" + ("---:|" if old else "") + "---:|",
    ]
    for part, value in sorted(million["parts"].items(), key=lambda item: -item[1]):
        previous = f"{_dollars(old['parts'][part])} | " if old and part in old["parts"] else ("- | " if old else "")
        lines.append(f"| {part} | {previous}{_dollars(value)} |")
    total_before = f"**{_dollars(old['total'])}** | " if old else ""
    lines += [f"| **Total** | {total_before}**{_dollars(million['total'])}** |", ""]
    lines += [
        f"Per million sessions: {million['requests']:,} API requests, {million['gb_seconds']:,} GB-s of Lambda, "
        f"{million['write_units']:,} DynamoDB write units and {million['read_units']:,} read units; "
        f"{cost['log_bytes_per_call']} bytes of logs and metrics per call.",
        "",
        "| Call | Calls measured | ms per call | DynamoDB requests | Write units | of which index writes "
        "| Read units |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in cost["routes"].items():
        index_units = figures.get("index_write_units_per_call", "-")  # runs before it was counted apart
        lines.append(
            f"| {name} | {figures['calls']:,} | {figures['ms_per_call']} | {figures['dynamodb_requests_per_call']} "
            f"| {figures['write_units_per_call']} | {index_units} | {figures['read_units_per_call']} |"
        )
    lines += [
        "",
        "Index writes are computed, not reported (dynalite reports none): an ALL index costs what the table "
        "write does, the claims' sparse KEYS_ONLY `by_user_key` 1 unit per registration with a user_id "
        "(its entry is keys only, under 1 KB, written once by the claim's put; the workload gives every "
        "session a user_id). That index is what finds a user's sessions without a scan (contract 17).",
    ]
    if "erasure_guard_reads" in cost:  # runs before the erasure guard did not count it
        lines += [
            "",
            "Registration refuses a user being erased (contract 17.3) by reading the set of users being erased, "
            "which a container trusts for `BATCH_STATE_CACHE_MS` (10 s): a cost per container, not per "
            f"registration. The run read it {cost['erasure_guard_reads']:,} times for its "
            f"{cost['routes']['register']['calls']:,} registrations (in the register row above); a container "
            "busy all day reads it 8,640 times, 8,640 read units ($0.0011). A registration without a user_id "
            "never reads it.",
        ]
    return lines
