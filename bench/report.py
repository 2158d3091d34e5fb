"""bench/RESULTS.md from the figures of one run (and the run before the speed work, for comparison)."""

from __future__ import annotations

from typing import Any

from bench.report_cost import cost_section
from bench.report_deployed import deployed_section, deployed_summary_row
from bench.report_erasure import cost_section as erasure_cost_section
from bench.report_erasure import rewrite_section
from bench.report_experiments import experiments_section
from bench.report_export import export_section
from bench.report_judgments import judgments_section, judgments_summary
from bench.request_counts import Case, counts_table

COLD_TARGET = 1.3
WARM_TARGET = 1.15
PAGING_TARGET = 1.5
SHORT = {
    "CollectionFunction": "collection",
    "UseForImprovementFunction": "use_for_improvement",
    "BatchSessionsFunction": "batch_sessions",
    "BatchReleaseFunction": "batch_release",
}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.1f} kB"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    alignment = align or "|".join("---:" if index else "---" for index in range(len(header)))
    return [f"| {' | '.join(header)} |", f"|{alignment}|", *(f"| {' | '.join(row)} |" for row in rows)]


def _summary(results: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []
    cold = results.get("coldstart")
    if cold:
        for mode in cold["modes"]:
            measured = {name: modes[mode]["ratio"] for name, modes in cold["functions"].items() if mode in modes}
            if not measured:
                continue
            worst_name = max(measured, key=lambda name: measured[name])
            which = "worst function: " if len(measured) > 1 else ""
            rows.append(
                [
                    f"Cold start, {mode.replace('_', ' ')}: (import + client) / floor",
                    f"<= {COLD_TARGET}x",
                    f"{measured[worst_name]:.2f}x ({which}{SHORT.get(worst_name, worst_name)})",
                    _met(measured[worst_name] <= COLD_TARGET),
                ]
            )
    if results.get("deployed"):
        rows.append(deployed_summary_row(results["deployed"]))
    warm = results.get("overhead")
    if warm:
        worst_name, worst = max(warm["routes"].items(), key=lambda item: item[1]["ratio"])
        rows.append(
            [
                "Warm: handler / same DynamoDB requests direct (worst route)",
                f"<= {WARM_TARGET}x",
                f"{worst['ratio']:.2f}x ({worst_name})",
                _met(worst["ratio"] <= WARM_TARGET),
            ]
        )
    paging = results.get("paging")
    if paging and "50" in paging["concurrent_vs_limit1"]:
        ratio = paging["concurrent_vs_limit1"]["50"]
        rows.append(
            [
                f"`GET /batch/sessions` limit 50 / limit 1 ({paging['delay_ms']:g} ms per request)",
                f"<= {PAGING_TARGET}x",
                f"{ratio:.2f}x (sequential: {paging['sequential_vs_limit1']['50']:.2f}x)",
                _met(ratio <= PAGING_TARGET),
            ]
        )
    if results.get("judgments"):
        rows += judgments_summary(results["judgments"])
    return _table(["Target", "Goal", "Measured", "Status"], rows, "---|---|---|---")


DOCS = "[docs/benchmarks.md](../docs/benchmarks.md)"


def _coldstart(cold: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    lines = [
        "## Cold start",
        "",
        f"Medians in ms of {cold['rounds']} rounds, a fresh interpreter per sample; what each column measures: {DOCS}.",
        "",
        "- Modes: " + "; ".join(f"`{mode}` = {text}" for mode, text in cold["modes"].items()) + ".",
        "",
        *_cold_table(cold),
        *_cold_without_bytecode(cold),
    ]
    if before and before.get("functions"):
        lines += _cold_before_after(cold, before)
    importtime = cold.get("importtime", {})
    if importtime:
        groups = sorted({group for entry in importtime.values() for group in entry})
        lines += ["", "Where the import time goes (ms of `python -X importtime` self time, by package group):", ""]
        header = ["group", *(key.replace("Function", "").replace("/", " ") for key in importtime)]
        rows = [[group, *(_ms(entry.get(group, 0.0)) for entry in importtime.values())] for group in groups]
        rows.append(["**sum**", *(_ms(sum(entry.values())) for entry in importtime.values())])
        lines += _table(header, rows)
    return lines


def _cold_table(cold: dict[str, Any]) -> list[str]:
    floor = cold["floor"]
    rows = [["floor", "-", _ms(floor["import"]), _ms(floor["init"]), _ms(floor["total"]), "1.00", "1.00"]]
    rows[0] += [_ms(floor["first"]), _ms(floor["second"])]
    for function_id, modes in cold["functions"].items():
        for mode, figures in modes.items():
            rows.append(
                [
                    SHORT.get(function_id, function_id),
                    mode,
                    _ms(figures["import"]),
                    _ms(figures["init"]),
                    _ms(figures["total"]),
                    f"{figures['ratio']:.2f}",
                    f"{figures['paired_ratio']:.2f}",
                    _ms(figures["first"]),
                    _ms(figures["second"]),
                ]
            )
    return _table(
        ["function", "tracing", "import", "init", "total", "ratio", "paired", "first", "second"],
        rows,
        "---|---|---:|---:|---:|---:|---:|---:|---:",
    )


def _cold_without_bytecode(cold: dict[str, Any]) -> list[str]:
    sourceless = cold.get("without_bytecode")
    if not sourceless:
        return []
    function_id, mode = sourceless["function"], sourceless["mode"]
    with_bytecode = cold["functions"][function_id][mode]
    rows = [
        ["without bytecode", _ms(sourceless["total"]), f"{sourceless['ratio']:.2f}x"],
        ["with bytecode", _ms(with_bytecode["total"]), f"{with_bytecode['ratio']:.2f}x"],
    ]
    return [
        "",
        f"Layer without bytecode ({SHORT.get(function_id, function_id)}, {mode}; why: {DOCS}):",
        "",
        *_table(["layer", "total ms", "of the floor"], rows),
    ]


def _cold_before_after(cold: dict[str, Any], before: dict[str, Any]) -> list[str]:
    rows = []
    for function_id, modes in cold["functions"].items():
        for mode, figures in modes.items():
            old = before["functions"].get(function_id, {}).get(mode)
            if old:
                rows.append(
                    [
                        SHORT.get(function_id, function_id),
                        mode,
                        f"{_ms(old['import'])} / {_ms(old['total'])}",
                        f"{old['ratio']:.2f}",
                        f"{_ms(figures['import'])} / {_ms(figures['total'])}",
                        f"{figures['ratio']:.2f}",
                    ]
                )
    return [
        "",
        "Before and after the speed work (each run against its own floor):",
        "",
        *_table(
            ["function", "tracing", "before: import / total ms", "before ratio", "after: import / total ms", "after"],
            rows,
            "---|---|---:|---:|---:|---:",
        ),
    ]


def _overhead(warm: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    lines = [
        "## Warm overhead",
        "",
        f"Each route's real handler called in-process with an API Gateway v2 event, {warm['iterations']} "
        "times, against moto (local/dynamodb.py's EmbeddedAws, in its own process). **direct** replays "
        "the DynamoDB requests the handler made (recorded once, ids substituted per iteration so every write "
        "succeeds or fails exactly as the handler's) with a plain boto3 client of the same settings, "
        "concurrent where the handler's were. Handler and direct alternate within each iteration; medians in ms. "
        "Tracing off, metrics on (flushed to a discarded stdout). Numbers are taken one at a time here "
        f"(NUMBER_BLOCK_MAX={warm.get('number_block_max', 64)}), so every registration makes the requests its "
        "recorded probe made; with the default blocks of 64 most registrations make 3 (see the request counts). "
        "moto answers a request in several ms and "
        "reconnects for each one, so the ratio flatters; the absolute **overhead** is the figure to watch.",
        "",
    ]
    rows = []
    for name, figures in warm["routes"].items():
        old = (before or {}).get("routes", {}).get(name)
        rows.append(
            [
                name,
                str(figures["requests"]),
                _ms(figures["handler_ms"]),
                _ms(figures["direct_ms"]),
                _ms(figures["overhead_ms"]),
                f"{figures['ratio']:.2f}",
                f"{figures['paired_ratio']:.2f}",
                "-" if old is None else f"{old['ratio']:.2f}",
            ]
        )
    lines += _table(
        ["route", "requests", "handler", "direct", "overhead", "ratio", "paired", "ratio before"],
        rows,
    )
    return lines


def _counts(cases: list[Case]) -> list[str]:
    return [
        "## DynamoDB requests per API call",
        "",
        "The fixed scenario of `bench/request_counts.py` on fresh tables (11 sessions, 3 events each but one). "
        "**This table is the budget**: `tests/integration/test_request_counts.py` (part of `make test`) runs the same "
        "scenario and fails when a case issues more requests than listed here. `make bench` rewrites it, so "
        "a rise shows in the diff of this file. Events and irrelevant marks read their batch's state (is it fenced "
        "by its export?, contract 13.5); a container caches it for `BATCH_STATE_CACHE_MS` (10 s), so most calls "
        "skip that read; the scenario runs with the cache off and counts it every time. So it does for the set of "
        "users being erased, which a registration with a user_id reads (contract 17.3; the sample sessions have one).",
        "",
        counts_table(cases),
    ]


def _paging(paging: dict[str, Any]) -> list[str]:
    limits = [str(limit) for limit in paging["limits"]]
    concurrent = paging["variants"]["concurrent"]
    lines = [
        "## Paging latency: `GET /batch/sessions`",
        "",
        f"A batch of {max(paging['limits']) + 1} sessions with 3 events each; `events_limit=100`. Every DynamoDB "
        f"request takes a fixed {paging['delay_ms']:g} ms: the answers are recorded from moto once, then "
        "served from a botocore `before-send` hook after the delay, as many at a time as are sent (a "
        "DynamoDB that is all latency; moto itself serves one request at a time and scans the whole table "
        "for an index Query). **concurrent** is the service as configured "
        f"(`DYNAMODB_MAX_CONCURRENCY={concurrent['max_concurrency']}`, botocore pool "
        f"`max_pool_connections={concurrent['max_pool_connections']}`, peak requests in flight "
        f"{concurrent['peak_in_flight']}); **wide** doubles the pool (peak in flight "
        f"{paging['variants'].get('wide', concurrent)['peak_in_flight']}); **sequential** is the same handler with "
        "`DYNAMODB_MAX_CONCURRENCY=1`: the events of each session fetched one after another, the obvious way. "
        f"Medians of {paging['repeats']}, ms.",
        "",
    ]
    names = [name for name in ("concurrent", "wide", "sequential") if f"{name}_ms" in paging]
    rows = []
    for name in names:
        rows.append([f"{name} ({paging['variants'][name]['max_concurrency']} at a time)"])
        rows[-1] += [_ms(paging[f"{name}_ms"][limit]) for limit in limits]
        rows.append([f"{name} / limit 1", *(f"{paging[f'{name}_vs_limit1'][limit]:.2f}x" for limit in limits)])
    for name in names:
        rows.append([f"{name}, no delay", *(_ms(paging[f"{name}_undelayed_ms"][limit]) for limit in limits)])
    lines += _table(["limit", *limits], rows)
    per_request = paging["sequential_undelayed_ms"][limits[-1]] / (int(limits[-1]) + 1)
    lines += [
        "",
        f"Requests per page: 1 Query for the page + 1 per session. Concurrent latency is about two round trips "
        f"plus the client's own work: the no-delay rows are that work alone, about {per_request:.1f} ms per "
        "request (botocore serializing, signing and parsing, and rendering; Python threads share one core for "
        "it). The limit-50 target needs that work to hide under the round trips; what remains above "
        "2 x delay is this CPU time. Pool warnings (`Connection pool is full`): "
        f"{paging['pool_full_warnings']}.",
    ]
    return lines


def _throughput(throughput: dict[str, Any]) -> list[str]:
    return [
        "## Throughput: registrations",
        "",
        f"`POST /session` through the local server (`python -m local.server`, embedded moto, own process) from "
        f"{throughput['threads']} client threads over HTTP for {throughput['duration_s']:g} s after a warm-up: "
        f"**{throughput['per_second']:.1f} registrations/s**, p50 {_ms(throughput['p50_ms'])} ms, "
        f"p95 {_ms(throughput['p95_ms'])} ms, {throughput['failures']} failures. The embedded moto serves one "
        "request at a time, so this is a figure for the local stack, not for AWS.",
        "",
        "**Ceiling on paper (AWS).** DynamoDB serves at most 1,000 write units a second per partition key. A "
        "registration writes its claim (its own key), its session (the batch's shard `n % S`) and the claim "
        "again; a session of about 1.5 KB is 2 write units. The collecting pointer takes one write per block of "
        "numbers per container (up to 64 numbers a block), not per registration. So one batch takes about "
        "**500 registrations/s with 1 shard** and **4,000/s with 8** (the default), S x 500 in general; "
        "`tests/integration/test_throttling.py` shows the ratio under a simulated per-key limit. What limits it "
        "next, and how an operator raises it: the HTTP API's route throttle (`ThrottlingRateLimit` 1,000/s, "
        "burst 2,000, in template.yaml); Lambda concurrency (1,000 per account by default; at ~30 registrations "
        "a second per instance, 4,000/s needs about 130; Service Quotas); an on-demand table's throughput (a new "
        "table serves about 4,000 writes/s at once and doubles with sustained traffic; 40,000 write units/s "
        "per table by default; Service Quotas, or pre-warm with warm throughput). `BatchShards` goes to 64. "
        "The events table is the first table to reach its limit: each click is 2 write units (the table and its "
        "`by_created_at` index), so 4,000 sessions/s with 3 clicks each write about 24,000 units/s there, "
        "spread over session ids (no hot key) but over half the default 40,000 per table.",
    ]


def _sizes(size: dict[str, Any]) -> list[str]:
    lines = ["## Artifact sizes (`make build`, i.e. `sam build`)", ""]
    if not size.get("built"):
        return [*lines, f"The build did not run: `{size.get('error', 'unknown error')}`"]
    rows = [
        [name, str(figures["files"]), _mb(figures["bytes"]), _mb(figures["zipped_bytes"]), str(figures["pyc_files"])]
        for name, figures in size["artifacts"].items()
    ]
    lines += _table(["artifact", "files", "unzipped", "zipped", ".pyc files"], rows)
    packages = size.get("layer_packages", {})
    if packages:
        lines += ["", "Largest parts of the layer: " + ", ".join(f"{k} {_mb(v)}" for k, v in packages.items()) + "."]
    return lines


def _get(data: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _cold_figure(cold: dict[str, Any] | None, function_id: str, mode: str) -> str:
    figures = _get(cold, "functions", function_id, mode)
    return "n/a" if figures is None else f"{_ms(figures['total'])} ms ({figures['ratio']:.2f}x the floor)"


def _changes(results: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    cold, old_cold = results.get("coldstart"), _get(before, "coldstart")
    first = "CollectionFunction"
    sourceless = _get(cold, "without_bytecode")
    layer_now = _get(results, "size", "artifacts", "ClickstreamLayer")
    layer_then = _get(before, "size", "artifacts", "ClickstreamLayer")
    xray_then = _get(old_cold, "importtime", f"{first}/tracing_off", "X-Ray SDK")
    xray_now = _get(cold, "importtime", f"{first}/tracing_off", "X-Ray SDK") or 0.0
    without = f"{_ms(sourceless['total'])} ms ({sourceless['ratio']:.2f}x)" if sourceless else "n/a"
    rows = [
        [
            "1. bytecode in the layer",
            "collection as deployed, total (same run)",
            f"without: {without}",
            f"with: {_cold_figure(cold, first, 'tracing_on')}",
        ],
    ]
    if layer_now and layer_then:
        rows.append(
            [
                "1. bytecode in the layer",
                "layer size (zipped)",
                f"{_mb(layer_then['bytes'])} ({_mb(layer_then['zipped_bytes'])})",
                f"{_mb(layer_now['bytes'])} ({_mb(layer_now['zipped_bytes'])})",
            ]
        )
    rows += [
        [
            "2. no X-Ray SDK unless tracing",
            "collection, tracing off: X-Ray SDK import self time",
            f"{_ms(xray_then)} ms",
            f"{_ms(xray_now)} ms",
        ],
        [
            "2. no X-Ray SDK unless tracing",
            "collection, tracing off: total",
            _cold_figure(old_cold, first, "tracing_off"),
            _cold_figure(cold, first, "tracing_off"),
        ],
        [
            "3. the Tracer patches botocore only",
            "collection as deployed: total",
            _cold_figure(old_cold, first, "tracing_on"),
            _cold_figure(cold, first, "tracing_on"),
        ],
        [
            "4. no client-side parameter validation",
            "client CPU per DynamoDB request (no-delay paging)",
            _per_request(before),
            _per_request(results),
        ],
    ]
    return [
        "## What changed for speed",
        "",
        f"Before: bench/results-before.json (the code before the speed work); after: this run. The changes, what "
        f"was checked and the gaps that remain: {DOCS}.",
        "",
        *_table(["change", "measured", "before", "after"], rows, "---|---|---:|---:"),
    ]


def _per_request(data: dict[str, Any] | None) -> str:
    figures = _get(data, "paging", "sequential_undelayed_ms")
    if not figures:
        return "n/a"
    limit = max(figures, key=int)
    return f"{figures[limit] / (int(limit) + 1):.2f} ms"


def _later_sections(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if results.get("size"):
        lines += [*_sizes(results["size"]), ""]
    if results.get("experiments"):
        lines += [*experiments_section(results["experiments"]), ""]
    return lines


def render(results: dict[str, Any], before: dict[str, Any] | None, cases: list[Case], environment: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.py`); edit the code, not this file. " + environment,
        "Absolute times are from a small shared machine and move a lot between runs; the ratios compare "
        "figures measured in the same run, interleaved.",
        "",
        *_summary(results),
        "",
    ]
    if results.get("coldstart"):
        lines += [*_coldstart(results["coldstart"], (before or {}).get("coldstart")), ""]
    if results.get("deployed"):
        lines += [*deployed_section(results["deployed"]), ""]
    if results.get("overhead"):
        lines += [*_overhead(results["overhead"], (before or {}).get("overhead")), ""]
    lines += [*_counts(cases), ""]
    if results.get("paging"):
        lines += [*_paging(results["paging"]), ""]
    if results.get("throughput"):
        lines += [*_throughput(results["throughput"]), ""]
    if results.get("export"):
        lines += [*export_section(results["export"], results.get("cost")), ""]
    if results.get("erasure"):
        lines += [*rewrite_section(results["erasure"]), "", *erasure_cost_section(results["erasure"]), ""]
    if results.get("judgments"):
        lines += [*judgments_section(results["judgments"]), ""]
    if results.get("cost"):
        lines += [*cost_section(results["cost"], (before or {}).get("cost")), ""]
    lines += _later_sections(results)
    lines += [*_changes(results, before), ""]
    return "\n".join(lines).rstrip() + "\n"
