"""The client and the `clickstream` command against the real local server checking SigV4 as API Gateway's
AWS_IAM authoriser does (`LOCAL_AUTH=iam`, contract 10): signed calls through every route work; unsigned,
wrongly signed, tampered and stale requests get 403 {"message": "Forbidden"}."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from clickstream_client import ClickstreamError, Client, NotFound

from tests.support import new_session_body
from tests.support.processes import local_server

ACCESS_KEY = "AKIDLOCALSYSTEMTEST"
SECRET_KEY = "local-system-test-secret"  # noqa: S105 - made up; the local server is told to accept it
REGION = "us-east-1"
FORBIDDEN = {"message": "Forbidden"}


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    settings = {"LOCAL_AUTH": "iam", "LOCAL_IAM_ACCESS_KEY_ID": ACCESS_KEY, "LOCAL_IAM_SECRET_ACCESS_KEY": SECRET_KEY}
    with local_server(log, **settings) as url:
        yield url


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The standard credential chain sees only these (no config files of this machine)."""
    environment = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


def signed(
    method: str, url: str, body: bytes = b"", *, secret: str = SECRET_KEY, at: float | None = None
) -> AWSRequest:
    """A request signed by botocore's signer (as the client signs), optionally with another key or clock."""
    request = AWSRequest(method=method, url=url, data=body, headers={"content-type": "application/json"})
    signer = SigV4Auth(Credentials(ACCESS_KEY, secret), "execute-api", REGION)
    clock = datetime.datetime.fromtimestamp(at or time.time(), datetime.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=clock):
        signer.add_auth(request)
    return request


def send(request: AWSRequest, *, body: bytes | None = None) -> requests.Response:
    prepared = request.prepare()
    data: Any = prepared.body if body is None else body
    return requests.request(
        prepared.method,
        prepared.url,
        headers=dict(prepared.headers),
        data=data,
        timeout=30,
    )


def test_the_signed_client_goes_through_every_route(signed_server: str, aws_credentials: dict[str, str]) -> None:
    with Client(signed_server, iam=True) as client:
        registered = client.register_session(**new_session_body("cli-s1"))
        client.register_session(**new_session_body("cli-s2"))
        assert client.add_events("cli-s1", [{"event_id": "c1", "object_id": "shoe-17"}])["accepted"] == 1
        assert client.mark_irrelevant("cli-s2")["is_irrelevant"] is True
        assert client.get_session("cli-s1")["batch_id"] == registered["batch_id"]
        task = client.use_for_improvement("cli-s1")["task"]
        assert [listed["session_id"] for listed in client.iter_tasks()] == ["cli-s1"]
        done = client.complete_task("cli-s1", "done", requested_at=task["requested_at"])
        assert done["status"] == "done"
        release = client.release("release-cli")
        assert release["session_count"] == 2
        sessions = list(client.iter_sessions(registered["batch_id"], page_size=1))
        assert [session["session_id"] for session in sessions] == ["cli-s1", "cli-s2"]
        assert client.get_batch(registered["batch_id"])["status"] == "released"
        assert registered["batch_id"] in [batch["batch_id"] for batch in client.list_batches()]
        with pytest.raises(NotFound):
            client.get_session("cli-nobody")


def test_unsigned_wrongly_signed_tampered_and_stale_requests_are_forbidden(
    signed_server: str, aws_credentials: dict[str, str]
) -> None:
    url = f"{signed_server}/session"
    body = json.dumps(new_session_body("cli-forged")).encode()
    assert send(signed("POST", url, body)).status_code == 200  # the control: correctly signed
    unsigned = requests.post(url, data=body, headers={"content-type": "application/json"}, timeout=30)
    assert (unsigned.status_code, unsigned.json()) == (403, FORBIDDEN)
    other_key = send(signed("POST", url, body, secret="not-the-secret"))  # noqa: S106 - made up
    assert (other_key.status_code, other_key.json()) == (403, FORBIDDEN)
    tampered = send(signed("POST", url, body), body=body.replace(b"cli-forged", b"cli-forgeD"))
    assert (tampered.status_code, tampered.json()) == (403, FORBIDDEN)
    stale = send(signed("POST", url, body, at=time.time() - 6 * 60))
    assert (stale.status_code, stale.json()) == (403, FORBIDDEN)
    query = signed("GET", f"{signed_server}/session?session_id=cli-forged")
    assert send(query).status_code == 200
    other_query = requests.get(
        f"{signed_server}/session?session_id=cli-s1", headers=dict(query.prepare().headers), timeout=30
    )
    assert (other_query.status_code, other_query.json()) == (403, FORBIDDEN)  # the signature covers the query
    with Client(signed_server) as unsigned_client, pytest.raises(ClickstreamError) as refused:
        unsigned_client.get_session("cli-forged")
    assert (refused.value.status, refused.value.body) == (403, FORBIDDEN)


def run_cli(url: str, *arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "clickstream_client", "--url", url, "--iam", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120, check=False)  # noqa: S603


def test_the_command_line_exports_schedules_and_reports(
    signed_server: str, aws_credentials: dict[str, str], tmp_path: Path
) -> None:
    import os

    environment = {**os.environ, **aws_credentials}
    with Client(signed_server, iam=True) as client:
        batch_id = client.register_session(**new_session_body("cli-c1"))["batch_id"]
        for session_id in ("cli-c1", "cli-c2", "cli-c3"):
            client.register_session(**new_session_body(session_id))
            client.add_events(session_id, [{"event_id": "c1", "object_id": "shoe-17"}])
    scheduled = run_cli(signed_server, "use", "cli-c1", "cli-c2", "cli-nobody", environment=environment)
    assert scheduled.returncode == 1, scheduled.stderr  # one id not found
    assert "cli-nobody" in scheduled.stdout + scheduled.stderr
    tasks = run_cli(signed_server, "tasks", environment=environment)
    assert tasks.returncode == 0, tasks.stderr
    assert {json.loads(line)["session_id"] for line in tasks.stdout.splitlines()} >= {"cli-c1", "cli-c2"}
    released = run_cli(signed_server, "release", "release-cli-c", environment=environment)
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["batch_id"] == batch_id
    out = tmp_path / "sessions.jsonl"
    exported = run_cli(signed_server, "sessions", batch_id, "--out", str(out), environment=environment)
    assert exported.returncode == 0, exported.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.read_text().splitlines()]
    with Client(signed_server, iam=True) as client:
        assert lines == list(client.iter_sessions(batch_id))  # every session of the batch, as the API pages it
    assert {"cli-c1", "cli-c2", "cli-c3"} <= {line["session_id"] for line in lines}
    assert f"{len(lines)} sessions written" in exported.stderr
    assert "scheduled 2, skipped 0, not found 1, failed 0" in scheduled.stdout + scheduled.stderr
    unknown = run_cli(signed_server, "batch", "b-unknown", environment=environment)
    assert unknown.returncode == 1
    assert "Traceback" not in unknown.stderr
    usage = run_cli(signed_server, "batch", environment=environment)
    assert usage.returncode == 2
    unsigned = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "clickstream_client", "--url", signed_server, "session", "cli-c1"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert unsigned.returncode == 1
    assert "403" in unsigned.stderr or "Forbidden" in unsigned.stderr


def test_the_smoke_test_passes_against_the_signed_local_server(
    signed_server: str, aws_credentials: dict[str, str]
) -> None:
    """`make smoke` is opt-in against a deployed stack; aimed at the local server it must pass too."""
    import os

    environment = {**os.environ, **aws_credentials, "SMOKE_URL": signed_server, "SMOKE_RELEASE": "1"}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/smoke"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 passed" in ran.stdout


def test_the_readmes_client_walkthrough_works_as_written(tmp_path: Path) -> None:
    """The README's lines, run by bash against a fresh `LOCAL_AUTH=iam make run` with its demo clickstream."""
    section = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8").split("<!-- client-walkthrough -->")
    block = section[1].split("```bash\n", 1)[1].split("```", 1)[0]
    log = tmp_path / "server.log"
    with local_server(log, LOCAL_AUTH="iam", SEED="1") as url:
        script = (
            "\n".join(line for line in block.splitlines() if "make run" not in line)  # the server is running
            .replace("http://127.0.0.1:3000", url)
            .replace(".venv/bin/clickstream", str(Path(sys.executable).with_name("clickstream")))
        )
        environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
        ran = subprocess.run(  # noqa: S603 - the README's own lines
            ["bash", "-e", "-o", "pipefail", "-c", script],  # noqa: S607 - bash from PATH
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "scheduled 2, skipped 1 (payload_search 1), not found 0, failed 0" in ran.stderr
    exported = [json.loads(line) for line in (tmp_path / "batch.jsonl").read_text().splitlines()]
    exported_ids = {session["session_id"] for session in exported}
    assert {"demo-session-1", "demo-session-2", "demo-payload-search"} <= exported_ids
    assert ran.stdout.splitlines()[-1] == "403"  # the unsigned curl


def test_the_command_line_erases_a_user_and_follows_it_to_done(
    signed_server: str, aws_credentials: dict[str, str]
) -> None:
    import os

    environment = {**os.environ, **aws_credentials}
    with Client(signed_server, iam=True) as client:
        for session_id in ("cli-e1", "cli-e2"):
            client.register_session(**new_session_body(session_id, user_id="cli-erased-user"))
            client.add_events(session_id, [{"event_id": "e1", "object_id": "shoe-17"}])
        client.register_session(**new_session_body("cli-e3", user_id="cli-kept-user"))

    erased = run_cli(signed_server, "erase", "cli-erased-user", "--wait", "--poll", "0.5", environment=environment)

    assert erased.returncode == 0, erased.stderr
    done = json.loads(erased.stdout)
    assert (done["status"], done["sessions"], done["events"], done["tasks"]) == ("done", 2, 2, 0)
    progress = erased.stderr.splitlines()
    assert progress[-1] == f"{done['erasure_id']}: done (sessions 2, events 2, tasks 0, datasets_rewritten 0)"
    with Client(signed_server, iam=True) as client:
        for session_id in ("cli-e1", "cli-e2"):
            with pytest.raises(NotFound):
                client.get_session(session_id)
        assert client.get_session("cli-e3")["user_id"] == "cli-kept-user"
    shown = run_cli(signed_server, "erasure", done["erasure_id"], environment=environment)
    assert (shown.returncode, json.loads(shown.stdout)) == (0, done)
