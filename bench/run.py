"""`make bench`: cold start, warm overhead, round trips, paging latency, throughput and sizes.

Prints a summary and writes bench/results.json and bench/RESULTS.md. Not part of `make test`; the
request counts it documents are checked there by tests/test_request_counts.py.

    python -m bench.run [--quick] [--skip-build]
        [--only coldstart,deployed,overhead,counts,paging,throughput,export,erasure,judgments,cost,size,experiments]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.request_counts import Case
from local.template import ROOT

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_JSON = BENCH_DIR / "results.json"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
BEFORE_JSON = BENCH_DIR / "results-before.json"  # the run before the speed work, kept for comparison
WORK = BENCH_DIR / ".work"
SECTIONS = (
    "coldstart",
    "deployed",
    "overhead",
    "counts",
    "paging",
    "throughput",
    "export",
    "erasure",
    "judgments",
    "cost",
    "size",
    "experiments",
)
COST_BEFORE_JSON = BENCH_DIR / "cost-before.json"  # the cost run before the scale work (3 writes a session)


def _settings(quick: bool) -> dict[str, Any]:
    return {
        "cold_rounds": 3 if quick else 7,
        "deployed_rounds": 2 if quick else 5,
        "warm_iterations": 15 if quick else 50,
        "paging_delay_ms": 15.0,
        "paging_limits": [1, 10, 50, 100],
        "paging_repeats": 3 if quick else 7,
        "throughput_threads": 8,
        "throughput_warmup_s": 2.0,
        "throughput_duration_s": 3.0 if quick else 8.0,
        "cost_sessions": 200 if quick else 1000,
        "export_sizes": [1000, 5000] if quick else [5000, 20000, 50000],
        "export_range_sessions": 20000,
        "erasure_sizes": [5000, 20000] if quick else [20_000, 100_000],
        "erasure_user_sessions": 12,
        "erasure_steps_sessions": [8, 200],  # the user's and other users' sessions in each of two batches
        "judgments_sizes": [20_000, 100_000] if quick else [100_000, 1_000_000],
        "experiment_repeats": 60 if quick else 200,
    }


def _scrub(text: str) -> str:
    """No paths of this machine in committed files."""
    return text.replace(str(ROOT) + os.sep, "").replace(str(ROOT), ".")


def _print_coldstart(cold: dict[str, Any]) -> None:
    print(f"\ncold start (ms, median of {cold['rounds']})    import    total  ratio  paired")
    print(f"  {'floor':32} {cold['floor']['import']:8.1f} {cold['floor']['total']:8.1f}   1.00")
    for function_id, modes in cold["functions"].items():
        for mode, figures in modes.items():
            print(
                f"  {function_id + ' ' + mode:32} {figures['import']:8.1f} {figures['total']:8.1f}"
                f"  {figures['ratio']:5.2f}  {figures['paired_ratio']:5.2f}"
            )


def _print_deployed(deployed: dict[str, Any]) -> None:
    print(f"\ncold start as deployed (ms, median of {deployed['rounds']})  init  first  total  ratio    cpu")
    floor = deployed["floor"]
    print(f"  {'floor':40} {floor['init']:7.1f} {floor['first']:6.1f} {floor['total']:6.1f}   1.00 {floor['cpu']:6.1f}")
    for function_id, modes in deployed["functions"].items():
        for mode in ("tracing_on", "tracing_off"):
            figures = modes[mode]
            print(
                f"  {function_id + ' ' + mode:40} {figures['init']:7.1f} {figures['first']:6.1f}"
                f" {figures['total']:6.1f}  {figures['ratio']:5.2f} {figures['cpu']:6.1f}"
            )
        print(
            f"  {'':40} tracing cost {modes['tracing_cost']:+.1f}, cpu {modes['tracing_cost_cpu']:+.1f} "
            f"(X-Ray import {deployed['xray_import_ms']:.1f}, cpu {deployed['xray_import_cpu_ms']:.1f})"
        )


def _print_overhead(warm: dict[str, Any]) -> None:
    print(f"\nwarm (ms, median of {warm['iterations']})         requests  handler   direct  ratio")
    for name, figures in warm["routes"].items():
        print(
            f"  {name:32} {figures['requests']:5d} {figures['handler_ms']:8.2f} {figures['direct_ms']:8.2f}"
            f"  {figures['ratio']:5.2f}"
        )


def _print_counts(cases: list[Case]) -> None:
    print("\nDynamoDB requests per API call")
    for case in cases:
        print(f"  {case.case_id:28} {case.route:36} {case.requests:3d}  {case.operations}")


def _print_paging(paging: dict[str, Any]) -> None:
    print(f"\nGET /batch/sessions, {paging['delay_ms']:g} ms per request (ms)")
    for name in ("concurrent", "sequential"):
        figures = paging[f"{name}_ms"]
        print(f"  {name:12}" + "".join(f"  limit {limit}: {value:7.1f}" for limit, value in figures.items()))


def _print_throughput(throughput: dict[str, Any]) -> None:
    print(
        f"\nthroughput: {throughput['per_second']} registrations/s ({throughput['threads']} threads), "
        f"p50 {throughput['p50_ms']} ms, p95 {throughput['p95_ms']} ms"
    )


def _print_export(export: dict[str, Any]) -> None:
    print("\nexport (one worker)   sessions/s  CPU ms/1000  peak MB")
    for size, run in export["runs"].items():
        figures = f"{run['sessions_per_s']:>9,} {run['cpu_ms_per_1000_sessions']:>11,} {run['peak_rss_mb']:>8.0f}"
        print(f"  {int(size):>8,} sessions {figures}")


def _print_erasure(erasure: dict[str, Any]) -> None:
    print("\nerasure: dataset rewrite   wall s  CPU s  peak MB  parts uploaded/left  again: wall s, uploaded")
    for size, run in erasure["runs"].items():
        first, again = run["first"], run["again"]
        left = first["parts"] - first["parts_uploaded"]
        print(
            f"  {int(size):>8,} sessions {first['wall_s']:8.1f} {first['cpu_s']:6.1f} {first['peak_rss_mb']:8.0f}"
            f"  {first['parts_uploaded']:>5}/{left:<14} {again['wall_s']:6.1f}, {again['parts_uploaded']}"
        )
    for name, step in erasure.get("steps", {}).get("steps", {}).items():
        print(
            f"  {name:34} {step['requests']:4d} requests {step['read_units']:7.1f} RCU {step['write_units']:7.1f} WCU"
        )


def _print_judgments(judgments: dict[str, Any]) -> None:
    print("\njudgments (one worker)   rows   CPU s  peak MB  exam err  PBM gap to truth")
    for size, run in judgments["runs"].items():
        print(
            f"  {int(size):>9,} sessions {run['distinct_rows']:>9,} {run['cpu_s']:7.1f} {run['peak_rss_mb']:8.0f}"
            f"  {run['examination_max_error']:8.4f}  {run['gap_to_truth']['pbm']:.4f}"
        )


def _print_cost(cost: dict[str, Any]) -> None:
    million = cost["per_million"]
    print(f"\ncost per million sessions: ${million['total']:.2f}")
    for part, value in sorted(million["parts"].items(), key=lambda item: -item[1]):
        print(f"  {part:40} ${value:8.2f}")


def _print_experiments(experiments: dict[str, Any]) -> None:
    print("\nsessions for 80% power (simulated rankers)")
    for name, figures in experiments["methods"].items():
        print(f"  {name:28} {figures['sessions']:>8,}  (power {figures['power']:.2f})")
    print(f"  A/B on CTR / interleaving: {experiments['ratio_ab_ctr_to_interleaving']:g}x")


def _print_size(size: dict[str, Any]) -> None:
    if not size.get("built"):
        print(f"\nbuild failed: {size.get('error')}")
        return
    for name, figures in size["artifacts"].items():
        print(f"  {name:28} {figures['bytes'] / 1e6:7.2f} MB  zipped {figures['zipped_bytes'] / 1e6:7.2f} MB")


def _print_summary(results: dict[str, Any], cases: list[Case]) -> None:
    printers = {
        "coldstart": _print_coldstart,
        "deployed": _print_deployed,
        "overhead": _print_overhead,
        "paging": _print_paging,
        "throughput": _print_throughput,
        "export": _print_export,
        "erasure": _print_erasure,
        "judgments": _print_judgments,
        "cost": _print_cost,
        "size": _print_size,
        "experiments": _print_experiments,
    }
    for section, printer in printers.items():
        if results.get(section):
            printer(results[section])
        if section == "overhead" and cases:
            _print_counts(cases)


def _standalone_sections(settings: dict[str, Any], run_build: bool) -> dict[str, tuple[str, Callable[[], Any]]]:
    """The sections that start their own servers or builds: label and measurement."""
    from bench import coldstart_deployed, cost, erasure, erasure_steps, experiments, export, judgments, size, throughput

    load = (settings["throughput_threads"], settings["throughput_warmup_s"], settings["throughput_duration_s"])
    return {
        "deployed": ("cold start as deployed", lambda: coldstart_deployed.measure(settings["deployed_rounds"])),
        "throughput": ("throughput", lambda: throughput.registrations(*load)),
        "export": (
            "export throughput and memory (dynalite)",
            lambda: export.measure(settings["export_sizes"], settings["export_range_sessions"]),
        ),
        "erasure": (
            "erasure: dataset rewrite and steps (dynalite)",
            lambda: {
                **erasure.measure(settings["erasure_sizes"], settings["erasure_user_sessions"]),
                "steps": erasure_steps.measure(*settings["erasure_steps_sessions"]),
            },
        ),
        "judgments": ("judgments on simulated batches", lambda: judgments.measure(settings["judgments_sizes"])),
        "cost": ("cost per million sessions (dynalite)", lambda: cost.measure(settings["cost_sessions"])),
        "size": ("build and sizes", lambda: size.build_sizes(run_build=run_build)),
        "experiments": (
            "experiments: sessions for 80% power",
            lambda: experiments.measure(settings["experiment_repeats"]),
        ),
    }


def _measure(sections: list[str], settings: dict[str, Any], run_build: bool) -> tuple[dict[str, Any], list[Case]]:
    from bench.env import BenchEnv

    env = BenchEnv()  # first: the functions' environment, read by Powertools when the layer is imported
    from bench import (
        coldstart,
        paging,
        warm,
    )

    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"settings": settings, "section_seconds": {}}
    clock = {"last": time.monotonic()}

    def lap(section: str) -> None:
        now = time.monotonic()
        results["section_seconds"][section] = round(now - clock["last"], 1)
        clock["last"] = now

    cases: list[Case] = []
    try:
        if "counts" in sections or "overhead" in sections:
            print("request counts ...", flush=True)
            cases = [Case(**case) for case in warm.request_counts(env)]
            results["request_counts"] = [case.__dict__ for case in cases]
            lap("counts")
        if "coldstart" in sections:
            print("cold start ...", flush=True)
            results["coldstart"] = coldstart.measure(env.dynamodb.endpoint, settings["cold_rounds"], WORK)
            lap("coldstart")
        if "overhead" in sections:
            print("warm overhead ...", flush=True)
            env.fresh_tables()
            results["overhead"] = warm.overhead(env, settings["warm_iterations"])
            lap("overhead")
        if "paging" in sections:
            print("paging latency ...", flush=True)
            results["paging"] = paging.paging(
                env, settings["paging_delay_ms"], settings["paging_limits"], settings["paging_repeats"]
            )
            lap("paging")
    finally:
        env.close()
    standalone = _standalone_sections(settings, run_build)
    for section, (label, run) in standalone.items():
        if section in sections:
            print(f"{label} ...", flush=True)
            results[section] = run()
            lap(section)
    return results, cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run; figures are rough)")
    parser.add_argument("--skip-build", action="store_true", help="measure .aws-sam/build as it is")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    parser.add_argument("--save-before", action="store_true", help="also keep this run as results-before.json")
    parser.add_argument("--save-cost-before", action="store_true", help="also keep this cost run as cost-before.json")
    arguments = parser.parse_args(argv)
    sections = [section for section in arguments.only.split(",") if section]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    settings = _settings(arguments.quick)
    started = time.monotonic()
    results, cases = _measure(sections, settings, run_build=not arguments.skip_build)
    results["seconds"] = round(time.monotonic() - started, 1)

    kept = []
    if RESULTS_JSON.exists():  # keep the last figures of the sections not measured this time
        previous = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
        if not cases:
            cases = [Case(**case) for case in previous.get("request_counts", [])]
            results.setdefault("request_counts", previous.get("request_counts", []))
        for section in (name for name in SECTIONS if name != "counts"):
            if section not in results and previous.get(section):
                results[section] = previous[section]
                kept.append(section)
    before = json.loads(BEFORE_JSON.read_text(encoding="utf-8")) if BEFORE_JSON.exists() else None
    if before is not None and COST_BEFORE_JSON.exists():
        before["cost"] = json.loads(COST_BEFORE_JSON.read_text(encoding="utf-8"))
    from bench.report import render

    environment = (
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{'quick run' if arguments.quick else 'full run'} in {results['seconds']:g} s"
        + (f" (kept from the run before: {', '.join(kept)})." if kept else ".")
    )
    text = json.dumps(results, indent=2) + "\n"
    RESULTS_JSON.write_text(_scrub(text), encoding="utf-8")
    if arguments.save_before:
        BEFORE_JSON.write_text(_scrub(text), encoding="utf-8")
    if arguments.save_cost_before and "cost" in results:
        COST_BEFORE_JSON.write_text(json.dumps(results["cost"], indent=2) + "\n", encoding="utf-8")
    RESULTS_MD.write_text(_scrub(render(results, before, cases, environment)), encoding="utf-8")
    _print_summary(results, cases)
    print(f"\nwrote {RESULTS_JSON.relative_to(ROOT)} and {RESULTS_MD.relative_to(ROOT)} ({results['seconds']:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
