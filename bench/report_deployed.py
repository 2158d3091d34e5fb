"""The "Cold start as deployed" section of bench/RESULTS.md (bench/coldstart_deployed.py); what it
measures and why: docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

DOCS = "[docs/benchmarks.md](../docs/benchmarks.md#cold-start-as-deployed)"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def deployed_summary_row(deployed: dict[str, Any]) -> list[str]:
    """The summary's row: the worst function's tracing cost as deployed against the X-Ray SDK's import."""
    functions = deployed["functions"]
    worst = max(functions, key=lambda name: functions[name]["tracing_cost_cpu"] / deployed["xray_import_cpu_ms"])
    holds = all(modes["within_xray_import"] and modes["within_xray_import_cpu"] for modes in functions.values())
    figures = functions[worst]
    return [
        "Cold start as deployed: tracing on - off (worst function)",
        "<= the X-Ray SDK's import",
        f"{figures['tracing_cost']:+.1f} ms wall, {figures['tracing_cost_cpu']:+.1f} ms CPU ({worst}); "
        f"import {deployed['xray_import_ms']:.1f} ms, {deployed['xray_import_cpu_ms']:.1f} ms CPU",
        "met" if holds else "**not met**",
    ]


def deployed_section(deployed: dict[str, Any]) -> list[str]:
    floor = deployed["floor"]
    lines = [
        "## Cold start as deployed",
        "",
        f"Medians in ms of {deployed['rounds']} rounds, a fresh Python 3.13 runtime process (awslambdaric) per "
        f"sample, each function packaged; what each column measures: {DOCS}.",
        "",
        f"- X-Ray SDK's own import (after boto3): {deployed['xray_import_ms']:.1f} ms, "
        f"{deployed['xray_import_cpu_ms']:.1f} ms CPU; its botocore patch {deployed['xray_patch_ms']:.1f} ms.",
        "",
        "| Function | Mode | init | first | total | / floor | cpu | / floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        f"| floor | | {floor['init']:.1f} | {floor['first']:.1f} | {floor['total']:.1f} | 1.00 "
        f"| {floor['cpu']:.1f} | 1.00 |",
    ]
    verdicts = []
    for function_id, modes in deployed["functions"].items():
        for mode in ("tracing_on", "tracing_off"):
            figures = modes[mode]
            lines.append(
                f"| {function_id} | {mode.replace('_', ' ')} | {figures['init']:.1f} | {figures['first']:.1f} "
                f"| {figures['total']:.1f} | {figures['ratio']:.2f} | {figures['cpu']:.1f} "
                f"| {figures['cpu_ratio']:.2f} |"
            )
        verdicts.append(
            f"| {function_id} | {modes['tracing_cost']:+.1f} | {_yes(modes['within_xray_import'])} "
            f"| {modes['tracing_cost_cpu']:+.1f} | {_yes(modes['within_xray_import_cpu'])} |"
        )
    return [
        *lines,
        "",
        "| Function | Tracing cost, wall (ms) | Within the import | Tracing cost, CPU (ms) | Within the import |",
        "|---|---:|:---:|---:|:---:|",
        *verdicts,
    ]
