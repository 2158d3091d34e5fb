"""`make invoke` (contract 10): a function's real handler on a sample event, as `sam local invoke` runs it,
against the DynamoDB of a running `make run`, or a fresh embedded one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from local.template import ROOT
from tests.support.processes import free_port, local_server


def invoke(*arguments: str, aws_port: int) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "AWS_PORT": str(aws_port)}
    environment.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    return subprocess.run(  # noqa: S603 - this interpreter, the project's module
        [sys.executable, "-m", "local.invoke", *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=120,
        check=False,
    )


def test_invoke_runs_the_handler_against_the_running_servers_dynamodb(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with local_server(log) as url:
        [aws_port] = re.findall(r"backed by embedded moto \(http://127\.0\.0\.1:(\d+)\)", log.read_text())
        ran = invoke("CollectionFunction", "events/register_session.json", aws_port=int(aws_port))
        assert ran.returncode == 0, ran.stderr
        assert "using the local AWS of make run" in ran.stderr
        result = json.loads(ran.stdout)
        assert result["statusCode"] == 200
        registered = json.loads(result["body"])
        fetched = requests.get(f"{url}/session", params={"session_id": registered["session_id"]}, timeout=30)
        assert fetched.json()["batch_id"] == registered["batch_id"]  # the server sees what invoke wrote


def test_invoke_without_a_server_uses_fresh_tables_and_reports_errors_as_lambda_does() -> None:
    nothing = free_port()
    ran = invoke("BatchReleaseFunction", "events/batch_release_direct.json", aws_port=nothing)
    assert ran.returncode == 1  # nothing to release in empty tables
    assert json.loads(ran.stdout) == {"errorType": "NoCollectingBatch", "errorMessage": "There is no collecting batch"}
    assert invoke("NoSuchFunction", "events/register_session.json", aws_port=nothing).returncode != 0
    missing = invoke("CollectionFunction", "events/nope.json", aws_port=nothing)
    assert missing.returncode != 0
    assert "no event file" in missing.stderr
