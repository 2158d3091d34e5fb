"""The "cold start as deployed" section of bench/RESULTS.md (bench/coldstart_deployed.py)."""

from __future__ import annotations

from typing import Any


def deployed_section(deployed: dict[str, Any]) -> list[str]:
    floor = deployed["floor"]
    lines = [
        "## Cold start as deployed",
        "",
        "Each function as `sam build` packages it (its folder and the layer built by the layer's Makefile, for "
        "this machine), in a fresh Python 3.13 process under the runtime interface client (awslambdaric) fed by "
        "a Runtime API stand-in, with Lambda's environment and the template's (`bench/coldstart_deployed.py`, "
        "the same machinery as tests/lambda). `tracing on` is as deployed (`Tracing: Active`: the Powertools "
        "Tracer, segments sent to a local X-Ray daemon stand-in); `tracing off` adds "
        "`POWERTOOLS_TRACE_DISABLED=true`. The floor runs the same way: a function that imports boto3 from the "
        "layer and creates a DynamoDB client at init, and makes one GetItem per invocation. `init`: process "
        "start to the first poll of the Runtime API (interpreter, runtime client, handler import); `first`: "
        "then to the first answer; `cpu`: the CPU time the process used by then (on this shared machine, far "
        f"less disturbed by the other work than wall time). Medians of {deployed['rounds']} rounds (every kind "
        "once per round, rotating order, after one unrecorded round); ms.",
        "",
        f"The X-Ray SDK's own import, after boto3, in a fresh 3.13 process with the packaged layer: "
        f"**{deployed['xray_import_ms']:.1f} ms**, {deployed['xray_import_cpu_ms']:.1f} ms of CPU (its botocore "
        f"patch: {deployed['xray_patch_ms']:.1f} ms more). Rule: tracing on may cost at most that over tracing "
        "off (`tracing cost`: the median of the per-round differences, of `total` against the import's wall "
        "time and of `cpu` against its CPU time).",
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
            [
                function_id,
                f"{modes['tracing_cost']:+.1f}",
                "yes" if modes["within_xray_import"] else "**no**",
                f"{modes['tracing_cost_cpu']:+.1f}",
                "yes" if modes["within_xray_import_cpu"] else "**no**",
            ]
        )
    lines += [
        "",
        "| Function | Tracing cost, wall (ms) | Within the import | Tracing cost, CPU (ms) | Within the import |",
        "|---|---:|:---:|---:|:---:|",
        *(f"| {' | '.join(row)} |" for row in verdicts),
    ]
    return lines
