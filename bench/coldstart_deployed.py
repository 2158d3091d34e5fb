"""Cold start as deployed: every function packaged as `sam build` packages it, each sample a fresh Python
3.13 runtime process under awslambdaric fed by the Runtime API stand-in (local/deployed.py), with Lambda's
environment and the template's, tracing on (as deployed: segments go to a local X-Ray daemon stand-in)
and tracing off, against a floor run the same way: a function whose init imports boto3 from the layer
and creates a DynamoDB client, and whose invocation makes one GetItem.

Per sample: `init` from starting the process to its first poll of the Runtime API (interpreter start,
runtime client, handler import), `first` from then to the first answer; `total` is both, what the first
caller waits beyond Lambda's own start; `cpu` the CPU time the process used by then (less disturbed than
wall time by other work on a shared machine). Also measured: the X-Ray SDK's own import (what tracing on adds at
least), in fresh 3.13 processes with the packaged layer on the path, after boto3 (which both modes import).
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from bench.env import MotoProcess
from local.deployed import LambdaInstance, Surroundings
from local.dynamodb import LOCAL_REGION, ensure_tables, local_table_names
from local.environment import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from local.lambda_package import LambdaPackage, make_read_only, make_writable, package_functions
from local.runtime_api import InvocationError
from local.template import ROOT
from local.xray_daemon import XRayDaemon

FLOOR_CODE = """import boto3

_client = boto3.session.Session().client("dynamodb")


def lambda_handler(event, context):
    _client.get_item(TableName="SessionIdsTable", Key={"session_id": {"S": "nobody"}}, ConsistentRead=True)
    return {"ok": True}
"""
FLOOR = "floor"
FLOOR_AS = "CollectionFunction"  # the floor runs with this function's environment and settings


def _events() -> dict[str, Any]:
    import json

    def sample(name: str) -> Any:
        return json.loads((ROOT / "events" / f"{name}.json").read_text(encoding="utf-8"))

    return {
        FLOOR: {},
        "CollectionFunction": sample("get_session"),
        "UseForImprovementFunction": sample("use_for_improvement"),
        "BatchSessionsFunction": sample("batch_sessions"),
        "BatchReleaseFunction": sample("batch_release"),
        "OutboxFunction": {"Records": []},
        "ExportFunction": {"step": "plan", "release_id": "release-none", "export_id": "export-none"},
    }


_XRAY_PROBE = """import sys, time
import boto3
started, started_cpu = time.perf_counter(), time.process_time()
import aws_xray_sdk.core
imported, imported_cpu = time.perf_counter(), time.process_time()
aws_xray_sdk.core.patch(["botocore"])
patched = time.perf_counter()
cpu = imported_cpu - started_cpu
print(f"RESULT {1000 * (imported - started):.3f} {1000 * (patched - imported):.3f} {1000 * cpu:.3f}")
"""


def _xray_import(package: LambdaPackage) -> tuple[float, float, float]:
    """The X-Ray SDK's import, its botocore patch, and the import's CPU time (ms), after boto3, in a fresh 3.13
    process."""
    completed = subprocess.run(  # noqa: S603 - the packaged interpreter, fixed arguments
        [str(package.python), "-B", "-c", _XRAY_PROBE],
        env={"PYTHONPATH": str(package.layer_dir / "python"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    imported, patched, cpu = line.split()[1:]
    return float(imported), float(patched), float(cpu)


def _cold_start(package: LambdaPackage, function_id: str, around: Surroundings, event: Any) -> dict[str, float]:
    instance = LambdaInstance(package, FLOOR_AS if function_id == FLOOR else function_id, around)
    try:
        with contextlib.suppress(InvocationError):  # an error answer is an answer: the figure is the time to it
            instance.invoke(event)
        answered = time.monotonic()
        cpu = instance.cpu_seconds()
        first_poll = instance.api.first_poll or answered
        init, first = first_poll - instance.started_at, answered - first_poll
        return {"init": init * 1000, "first": first * 1000, "total": (init + first) * 1000, "cpu": cpu * 1000}
    finally:
        instance.stop()


def _with_floor(package: LambdaPackage, work: Path) -> LambdaPackage:
    floor = work / "task" / FLOOR
    floor.mkdir(parents=True)
    (floor / "app.py").write_text(FLOOR_CODE, encoding="utf-8")
    make_read_only(floor)
    return dataclasses.replace(package, task_roots={**package.task_roots, FLOOR_AS: floor})


def _median(runs: list[dict[str, float]], phase: str) -> float:
    return round(statistics.median(run[phase] for run in runs), 1)


def measure(rounds: int) -> dict[str, Any]:
    """Against a moto of its own, in another process (as DynamoDB is), with the template's tables."""
    dynamodb = MotoProcess()
    try:
        session = boto3.session.Session(
            region_name=LOCAL_REGION,
            aws_access_key_id=LOCAL_ACCESS_KEY_ID,
            aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        )
        ensure_tables(session.client("dynamodb", endpoint_url=dynamodb.endpoint), local_table_names())
        return _measure(dynamodb.endpoint, rounds)
    finally:
        dynamodb.stop()


def _measure(endpoint: str, rounds: int) -> dict[str, Any]:
    events = _events()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        package = package_functions(work / "package")
        floor_package = _with_floor(package, work / "floor")
        daemon = XRayDaemon()
        (work / "scratch" / "home").mkdir(parents=True)
        (work / "scratch" / "home").chmod(0o555)
        try:
            kinds = [(FLOOR, False)] + [
                (name, tracing) for name in events if name != FLOOR for tracing in (True, False)
            ]
            runs: dict[tuple[str, bool], list[dict[str, float]]] = {kind: [] for kind in kinds}
            xray: list[tuple[float, float, float]] = []
            for round_number in range(rounds + 1):  # the first round is not recorded: files in the page cache
                shift = round_number % len(kinds)
                for function_id, tracing in kinds[shift:] + kinds[:shift]:
                    around = Surroundings(endpoint, daemon.address, work / "scratch", tracing=tracing)
                    chosen = floor_package if function_id == FLOOR else package
                    figures = _cold_start(chosen, function_id, around, events[function_id])
                    if round_number:
                        runs[(function_id, tracing)].append(figures)
                xray.append(_xray_import(package))
        finally:
            daemon.stop()
            make_writable(work)
    return _summary(runs, xray[1:], rounds)


PHASES = ("init", "first", "total", "cpu")


def _paired(runs: dict[tuple[str, bool], list[dict[str, float]]], function_id: str, phase: str) -> float:
    """The median over rounds of (tracing on - tracing off), both measured in the same round."""
    pairs = zip(runs[(function_id, True)], runs[(function_id, False)], strict=True)
    return round(statistics.median(on[phase] - off[phase] for on, off in pairs), 1)


def _summary(
    runs: dict[tuple[str, bool], list[dict[str, float]]], xray: list[tuple[float, float, float]], rounds: int
) -> dict[str, Any]:
    floor = runs[(FLOOR, False)]
    xray_import = round(statistics.median(imported for imported, _, _ in xray), 1)
    xray_cpu = round(statistics.median(cpu for _, _, cpu in xray), 1)
    functions: dict[str, Any] = {}
    for (function_id, tracing), samples in runs.items():
        if function_id == FLOOR:
            continue
        mode = "tracing_on" if tracing else "tracing_off"
        functions.setdefault(function_id, {})[mode] = {phase: _median(samples, phase) for phase in PHASES} | {
            "ratio": round(_median(samples, "total") / _median(floor, "total"), 2),
            "cpu_ratio": round(_median(samples, "cpu") / _median(floor, "cpu"), 2),
        }
    for function_id, modes in functions.items():
        modes["tracing_cost"] = _paired(runs, function_id, "total")
        modes["tracing_cost_cpu"] = _paired(runs, function_id, "cpu")
        modes["within_xray_import"] = modes["tracing_cost"] <= xray_import
        modes["within_xray_import_cpu"] = modes["tracing_cost_cpu"] <= xray_cpu
    return {
        "rounds": rounds,
        "floor": {phase: _median(floor, phase) for phase in PHASES},
        "xray_import_ms": xray_import,
        "xray_import_cpu_ms": xray_cpu,
        "xray_patch_ms": round(statistics.median(patched for _, patched, _ in xray), 1),
        "functions": functions,
    }
