"""What a running `make run` tells the rest of this checkout: `.run/make-run-<PORT>.json` names the AWS it
uses, so `make invoke` (same PORT) talks to that server's AWS, never to whatever else answers on a port."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from local.template import ROOT

RUN_DIR = ROOT / ".run"


@dataclass(frozen=True)
class RunRecord:
    api_url: str
    aws_endpoint: str  # the embedded moto: SQS and EventBridge, and DynamoDB unless dynamodb_endpoint differs
    dynamodb_endpoint: str
    pid: int


def record_path(api_port: int, run_dir: Path = RUN_DIR) -> Path:
    return run_dir / f"make-run-{api_port}.json"


def write_record(api_port: int, record: RunRecord, run_dir: Path = RUN_DIR) -> Path:
    path = record_path(api_port, run_dir)
    path.parent.mkdir(exist_ok=True)
    draft = path.with_suffix(f".{record.pid}.tmp")
    draft.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    draft.replace(path)  # readers never see half a record
    return path


def remove_record(api_port: int, pid: int, run_dir: Path = RUN_DIR) -> None:
    """Remove the record if it is still this process's (a later server on the port may have replaced it)."""
    path = record_path(api_port, run_dir)
    record = read_record(api_port, run_dir)
    if record is not None and record.pid == pid:
        path.unlink(missing_ok=True)


def read_record(api_port: int, run_dir: Path = RUN_DIR) -> RunRecord | None:
    try:
        fields = json.loads(record_path(api_port, run_dir).read_text(encoding="utf-8"))
        return RunRecord(**fields)
    except (OSError, ValueError, TypeError):
        return None


def stale_reason(record: RunRecord) -> str | None:
    """Why the recorded server cannot be used (its process is gone, its AWS does not answer), or None."""
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return f"its process {record.pid} has exited"
    except PermissionError:
        pass  # alive, under another user
    try:
        answer = requests.get(f"{record.aws_endpoint}/moto-api/config", timeout=5)
    except requests.RequestException:
        return f"its AWS at {record.aws_endpoint} does not answer"
    if not answer.ok:
        return f"{record.aws_endpoint} does not answer as its embedded AWS"
    return None
