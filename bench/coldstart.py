"""Cold start: each function's handler import (and first request) in fresh interpreters, against the floor."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement

from local.environment import lambda_environment
from local.template import ROOT, function_code, layer_paths, load_template

PROBE = Path(__file__).with_name("coldstart_probe.py")
PHASES = ("import", "init", "first", "second")

# A sample event per function that needs no data (it answers 404 on empty tables).
SAMPLE_EVENTS = {
    "CollectionFunction": "get_session",
    "UseForImprovementFunction": "use_for_improvement",
    "BatchSessionsFunction": "batch_sessions",
    "BatchReleaseFunction": "batch_release",
}

MODES = {
    "tracing_on": "as deployed: Tracing: Active, so the Powertools Tracer is on (X-Ray SDK)",
    "tracing_off": "POWERTOOLS_TRACE_DISABLED=true",
}

# Self time under -X importtime, grouped by what pulls it in.
_GROUPS = {
    "aws_xray_sdk": "X-Ray SDK",
    "wrapt": "X-Ray SDK",
    "aws_lambda_powertools": "Powertools",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "annotated_types": "pydantic",
    "typing_inspection": "pydantic",
    "typing_extensions": "pydantic",
    "boto3": "boto3/botocore",
    "botocore": "boto3/botocore",
    "urllib3": "boto3/botocore",
    "s3transfer": "boto3/botocore",
    "jmespath": "boto3/botocore",
    "dateutil": "boto3/botocore",
    "clickstream": "clickstream (layer)",
    "app": "clickstream (layer)",
}


def _requirement_tree(requirements_file: Path) -> set[str]:
    """Distributions a layer's requirements install (with extras), resolved from this environment."""
    pending = [
        Requirement(line.split("#")[0].strip())
        for line in requirements_file.read_text(encoding="utf-8").splitlines()
        if line.split("#")[0].strip()
    ]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        seen.add(name)
        for text in dist.requires or []:
            child = Requirement(text)
            for extra in requirement.extras or {""}:
                environment: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
                environment["extra"] = extra
                if child.marker is None or child.marker.evaluate(environment):
                    pending.append(child)
                    break
    return seen


def sourceless_layer(work: Path) -> Path:
    """The layer as `sam build` ships it, for this interpreter: its packages and code, and no bytecode."""
    layer_source = layer_paths(load_template())[0]
    target = work / "layer-without-bytecode"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in sorted(_requirement_tree(layer_source / "requirements.txt")):
        dist = distribution(name)
        for file in dist.files or []:
            if "__pycache__" in file.parts or file.suffix == ".pyc" or file.parts[0].startswith(".."):
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                destination = target / file
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
    shutil.copytree(layer_source / "clickstream", target / "clickstream", ignore=shutil.ignore_patterns("__pycache__"))
    return target


@dataclass
class Samples:
    runs: list[dict[str, float]] = field(default_factory=list)

    def median(self, phase: str) -> float:
        return statistics.median(run[phase] for run in self.runs)

    def median_total(self) -> float:
        return statistics.median(run["import"] + run["init"] for run in self.runs)


def _lambda_like_environment(function_id: str, code_uri: Path, mode: str, endpoint: str) -> dict[str, str]:
    environment = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    environment.update(lambda_environment(endpoint))
    environment.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": function_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "LAMBDA_TASK_ROOT": str(code_uri),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            # Lambda sets these when tracing is active; the daemon address is loopback here.
            "_X_AMZN_TRACE_ID": "Root=1-674a0000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            # No shared config files in Lambda.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    if mode == "tracing_off":
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    return environment


def _command(function_id: str | None, importtime: bool = False, layer: Path | None = None) -> list[str]:
    command = [sys.executable]
    if layer is not None:
        command.append("-B")  # /opt is read-only in Lambda: bytecode compiled at import is never kept
    if importtime:
        command += ["-X", "importtime"]
    command.append(str(PROBE))
    if function_id is None:
        return [*command, "floor"]
    code_uri, _ = function_code(load_template(), function_id)
    layer = layer or layer_paths(load_template())[0]
    event = ROOT / "events" / f"{SAMPLE_EVENTS[function_id]}.json"
    return [*command, "function", str(code_uri), str(layer), str(event)]


def _run(
    function_id: str | None, mode: str, endpoint: str, importtime: bool = False, layer: Path | None = None
) -> tuple[dict[str, float], str]:
    probe_function = function_id or "CollectionFunction"
    code_uri, _ = function_code(load_template(), probe_function)
    completed = subprocess.run(  # noqa: S603 - our own probe, fixed arguments
        _command(function_id, importtime, layer),
        env=_lambda_like_environment(probe_function, code_uri, mode, endpoint),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"cold start probe failed ({function_id}, {mode}):\n{completed.stderr[-3000:]}")
    values = dict(part.split("=", 1) for part in lines[-1].split()[1:])
    return {phase: float(values[phase]) for phase in PHASES}, completed.stderr


def importtime_groups(stderr: str) -> dict[str, float]:
    """Self time (ms, as -X importtime reports it) of what the timed import loaded, by group."""
    totals: dict[str, float] = {}
    started = False
    for line in stderr.splitlines():
        if line.startswith("BENCH-IMPORT-START"):
            started = True
            continue
        if line.startswith("BENCH-IMPORT-END"):
            break
        if not started or not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line[len("import time:") :].split("|", 2)
        top = name.strip().split(".")[0]
        group = _GROUPS.get(top, "stdlib and other")
        totals[group] = totals.get(group, 0.0) + float(self_us) / 1000
    return {group: round(value, 1) for group, value in sorted(totals.items(), key=lambda item: -item[1])}


def measure(endpoint: str, rounds: int, work: Path) -> dict[str, Any]:
    """Each function as deployed (tracing on); one with tracing off, and one with a layer lacking bytecode."""
    functions = list(SAMPLE_EVENTS)
    sourceless = sourceless_layer(work)
    Kind = tuple[str | None, str, bool]  # function (None: the floor), tracing mode, layer without bytecode
    floor_kind: Kind = (None, "tracing_off", False)
    kinds: list[Kind] = [floor_kind, *((function_id, "tracing_on", False) for function_id in functions)]
    kinds += [(functions[0], "tracing_off", False), (functions[0], "tracing_on", True)]
    samples: dict[Kind, Samples] = {kind: Samples() for kind in kinds}

    def run(kind: Kind, importtime: bool = False) -> tuple[dict[str, float], str]:
        function_id, mode, without_bytecode = kind
        return _run(function_id, mode, endpoint, importtime, sourceless if without_bytecode else None)

    for kind in kinds:  # one unrecorded run each: bytecode caches written, files in the page cache
        run(kind)
    for round_number in range(rounds):
        shift = round_number % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:  # interleaved, so drift hits every kind alike
            samples[kind].runs.append(run(kind)[0])
    floor = samples[floor_kind]

    def summary(runs: Samples) -> dict[str, float]:
        paired = [
            (run["import"] + run["init"]) / (base["import"] + base["init"])
            for run, base in zip(runs.runs, floor.runs, strict=True)
        ]
        return {phase: round(runs.median(phase), 1) for phase in PHASES} | {
            "total": round(runs.median_total(), 1),
            "ratio": round(runs.median_total() / floor.median_total(), 2),
            "paired_ratio": round(statistics.median(paired), 2),
        }

    measured = [kind for kind in kinds if kind[0] is not None and not kind[2]]
    functions_summary: dict[str, dict[str, Any]] = {}
    for function_id, mode, _ in measured:
        assert function_id is not None
        functions_summary.setdefault(function_id, {})[mode] = summary(samples[(function_id, mode, False)])
    return {
        "rounds": rounds,
        "modes": MODES,
        "floor": {phase: round(floor.median(phase), 1) for phase in PHASES} | {"total": round(floor.median_total(), 1)},
        "functions": functions_summary,
        "without_bytecode": {
            "function": functions[0],
            "mode": "tracing_on",
            **summary(samples[(functions[0], "tracing_on", True)]),
        },
        "importtime": {
            "floor": importtime_groups(run(floor_kind, importtime=True)[1]),
            **{
                f"{function_id}/{mode}": importtime_groups(run((function_id, mode, False), importtime=True)[1])
                for function_id, mode, _ in measured
            },
        },
    }
