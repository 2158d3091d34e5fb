"""`make invoke` (contract 10): a function's real handler on a sample event, as `sam local invoke` runs it,
against the AWS of this checkout's `make run` on the same PORT (never another server's), or a fresh one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from local.run_record import RunRecord, remove_record, write_record
from local.template import ROOT
from tests.support.processes import free_port, local_server


def invoke(*arguments: str, api_port: int) -> subprocess.CompletedProcess[str]:
    """`make invoke PORT=<api_port> ...`."""
    environment = {**os.environ, "PORT": str(api_port)}
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


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def session_found(url: str, session_id: str) -> bool:
    return requests.get(f"{url}/session", params={"session_id": session_id}, timeout=30).status_code == 200


def test_invoke_runs_the_handler_against_its_own_servers_aws_and_says_which(tmp_path: Path) -> None:
    with local_server(tmp_path / "mine.log") as mine, local_server(tmp_path / "other.log") as other:
        ran = invoke("CollectionFunction", "events/register_session.json", api_port=port_of(mine))
        assert ran.returncode == 0, ran.stderr
        assert f"using the AWS of make run at {mine}" in ran.stderr
        result = json.loads(ran.stdout)
        assert result["statusCode"] == 200
        registered = json.loads(result["body"])
        fetched = requests.get(f"{mine}/session", params={"session_id": registered["session_id"]}, timeout=30)
        assert fetched.json()["batch_id"] == registered["batch_id"]  # the server sees what invoke wrote
        assert not session_found(other, registered["session_id"])  # and no other server got it


def test_invoke_without_a_server_uses_fresh_tables_and_reports_errors_as_lambda_does() -> None:
    nothing = free_port()
    ran = invoke("BatchReleaseFunction", "events/batch_release_direct.json", api_port=nothing)
    assert ran.returncode == 1  # nothing to release in empty tables
    assert json.loads(ran.stdout) == {"errorType": "NoCollectingBatch", "errorMessage": "There is no collecting batch"}
    assert f"no make run on PORT={nothing} in this checkout" in ran.stderr
    assert "using a fresh embedded AWS with empty tables" in ran.stderr
    assert invoke("NoSuchFunction", "events/register_session.json", api_port=nothing).returncode != 0
    missing = invoke("CollectionFunction", "events/nope.json", api_port=nothing)
    assert missing.returncode != 0
    assert "no event file" in missing.stderr


def test_invoke_does_not_trust_the_record_of_a_server_that_has_gone(tmp_path: Path) -> None:
    with local_server(tmp_path / "other.log"):
        port = free_port()
        exited = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
        )
        gone = int(exited.stdout)
        # A record left by a server killed before it could remove it, naming an AWS that now answers for another.
        [aws] = re.findall(r"^Embedded AWS \(.*\) on (\S+)$", (tmp_path / "other.log").read_text(), re.MULTILINE)
        write_record(port, RunRecord(f"http://127.0.0.1:{port}", aws, aws, gone))
        try:
            ran = invoke("BatchReleaseFunction", "events/batch_release_direct.json", api_port=port)
        finally:
            remove_record(port, gone)
    assert f"its process {gone} has exited" in ran.stderr
    assert "using a fresh embedded AWS" in ran.stderr
