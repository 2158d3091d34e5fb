"""The `clickstream` command line: output, exit statuses (0 ok, 1 API error, 2 usage) and messages."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from clickstream_client import Client, cli
from conftest import ACCESS_KEY, SECRET_KEY, stubbed_client
from fake_api import IAM_REGION, FakeApi


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def test_sessions_writes_json_lines_to_stdout(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    batch_id = api.add_batch(12, release_id="r1", events_per_session=2)
    api.register_session({}, {"session_id": "unicode", "search_query": "café ☕", "search_results": []})

    status, out, err = run(capsys, "--url", url, "sessions", batch_id, "--page-size", "5", "--events-limit", "1")

    assert status == 0
    sessions = json_lines(out)
    assert [session["session_number"] for session in sessions] == list(range(1, 13))
    assert all(len(session["events"]) == 1 for session in sessions)
    assert err == ""
    assert [request.query["after_number"] for request in api.requests_to("/batch/sessions")] == ["0", "5", "10"]


def test_sessions_keeps_non_ascii_readable(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.register_session({}, {"session_id": "s", "search_query": "café ☕", "search_results": []})

    status, out, _ = run(capsys, "--url", url, "sessions", "b-0001")

    assert status == 0
    assert '"search_query": "café ☕"' in out


def test_sessions_resumes_after_a_number(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.add_batch(6)

    _, out, _ = run(capsys, "--url", url, "sessions", "b-0001", "--after", "4")

    assert [session["session_number"] for session in json_lines(out)] == [5, 6]


def test_sessions_to_a_file(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    api.add_batch(3)
    (tmp_path / "exports").mkdir()
    target = tmp_path / "exports" / "batch.jsonl"

    status, out, err = run(capsys, "--url", url, "sessions", "b-0001", "--out", str(target))

    assert status == 0
    assert out == ""
    assert len(json_lines(target.read_text(encoding="utf-8"))) == 3
    assert err == f"3 sessions written to {target}\n"
    assert [path.name for path in target.parent.iterdir()] == ["batch.jsonl"]


def test_sessions_leaves_no_file_when_the_export_fails(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    api.add_batch(5)
    api.script("/batch/sessions", 200, body={"batch_id": "b-0001", "last_number": 2, "has_more": True, "sessions": []})
    api.script("/batch/sessions", 500, body={"message": "Internal server error", "request_id": "req-9"})
    (tmp_path / "exports").mkdir()
    target = tmp_path / "exports" / "batch.jsonl"

    status, _, err = run(capsys, "--url", url, "sessions", "b-0001", "--out", str(target))

    assert status == 1
    assert err == "error: 500 Internal server error (request id req-9)\n"
    assert list(target.parent.iterdir()) == []


def test_sessions_to_a_folder_that_does_not_exist(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    api.add_batch(1)

    status, _, err = run(capsys, "--url", url, "sessions", "b-0001", "--out", str(tmp_path / "nowhere" / "b.jsonl"))

    assert status == 1
    assert err == f"error: No such file or directory: {tmp_path / 'nowhere' / 'b.jsonl'}\n"


def test_sessions_shows_progress_against_the_released_count(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api.add_batch(7, release_id="r1")
    monkeypatch.setattr(cli, "_is_terminal", lambda stream: stream is sys.stderr)

    status, _, err = run(capsys, "--url", url, "sessions", "b-0001", "--out", str(tmp_path / "out.jsonl"))

    assert status == 0
    assert "7/7" in err
    assert "Traceback" not in err


def test_sessions_of_an_unknown_batch_fails_with_the_apis_message(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "--url", url, "sessions", "b-nope")

    assert status == 1
    assert out == ""
    assert err == "error: 404 Batch with id=b-nope not found\n"


def test_batch_batches_release_and_session(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    for number in range(3):
        api.add_batch(2, release_id=f"r{number}")
    api.add_batch(1)

    status, out, _ = run(capsys, "--url", url, "batch", "b-0002")
    assert status == 0
    assert json.loads(out)["release_id"] == "r1"

    status, out, _ = run(capsys, "--url", url, "batches")
    assert status == 0
    assert [batch["batch_id"] for batch in json_lines(out)] == ["b-0004", "b-0003", "b-0002", "b-0001"]

    status, out, _ = run(capsys, "--url", url, "batches", "--limit", "2")
    assert [batch["batch_id"] for batch in json_lines(out)] == ["b-0004", "b-0003"]
    assert api.requests_to("/batches")[-1].query == {"limit": "2"}

    status, out, _ = run(capsys, "--url", url, "release", "r-new")
    assert status == 0
    assert json.loads(out) | {"released_at": 0} == {
        "release_id": "r-new",
        "batch_id": "b-0004",
        "released_at": 0,
        "session_count": 1,
    }

    status, out, _ = run(capsys, "--url", url, "session", "sess-000007", "--events-limit", "0")
    assert status == 0
    assert json.loads(out)["batch_id"] == "b-0004"


def test_tasks_and_complete(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.add_batch(2, events_per_session=1)
    api.use_for_improvement({}, {"session_id": "sess-000001"})
    api.use_for_improvement({}, {"session_id": "sess-000002"})

    status, out, _ = run(capsys, "--url", url, "complete", "sess-000001", "--status", "failed", "--error", "boom")
    assert status == 0
    assert json.loads(out) | {"completed_at": 0} == {
        "session_id": "sess-000001",
        "status": "failed",
        "error": "boom",
        "completed_at": 0,
        "created_at": api.tasks["sess-000001"]["created_at"],
        "sequence": 1,
    }

    status, out, _ = run(capsys, "--url", url, "tasks")
    assert [task["session_id"] for task in json_lines(out)] == ["sess-000002"]
    status, out, _ = run(capsys, "--url", url, "tasks", "--status", "failed")
    assert [task["session_id"] for task in json_lines(out)] == ["sess-000001"]

    status, _, err = run(capsys, "--url", url, "complete", "sess-000001", "--status", "done")
    assert status == 1
    assert err == "error: 409 The task is already failed\n"


def test_use_schedules_and_summarises(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.add_batch(3, events_per_session=1)
    api.register_session({}, {"session_id": "quiet", "search_query": "q", "search_results": []})
    ids = ["sess-000001", "sess-000002", "sess-000003", "quiet", "sess-000001"]

    status, out, err = run(capsys, "--url", url, "use", *ids)

    assert status == 0
    answers = json_lines(out)
    assert sorted(answer["session_id"] for answer in answers) == ["quiet", "sess-000001", "sess-000002", "sess-000003"]
    assert err == "scheduled 3, skipped 1 (no_events 1), not found 0, failed 0\n"
    assert len(api.requests_to("/session/use-for-improvement")) == 4  # each id once


def test_experiment_prints_the_report_or_exits_1_for_an_unknown_one(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.experiments["ranker-v7"] = {"id": "ranker-v7", "variants": [], "batches": ["b-0001", "b-0002"]}

    status, out, _ = run(capsys, "--url", url, "experiment", "ranker-v7")
    assert status == 0
    assert json.loads(out)["batches"] == ["b-0001", "b-0002"]

    status, out, err = run(capsys, "--url", url, "experiment", "never-run")
    assert (status, out) == (1, "")
    assert "No exported batch has the experiment with id=never-run" in err
    assert "Traceback" not in err


def test_use_exits_1_when_an_id_is_not_found_or_fails(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add_batch(1, events_per_session=1)
    api.script("/session/use-for-improvement", 500, body={"message": "Internal server error", "request_id": "r-1"})

    status, _, err = run(capsys, "--url", url, "use", "--workers", "1", "sess-000001", "ghost", "sess-000001")

    assert status == 1
    lines = err.splitlines()
    assert "failed: sess-000001: 500 Internal server error (request id r-1)" in lines
    assert "not found: ghost" in lines
    assert lines[-1] == "scheduled 0, skipped 0, not found 1, failed 1"


def test_use_reads_ids_from_a_file_or_stdin(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    api.add_batch(3, events_per_session=1)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("sess-000001\n\n  sess-000002  \nsess-000001\n")

    status, _, err = run(capsys, "--url", url, "use", "--from", str(ids_file))
    assert status == 0
    assert err.splitlines()[-1] == "scheduled 2, skipped 0, not found 0, failed 0"

    monkeypatch.setattr(sys, "stdin", io.StringIO("sess-000003\n\nnope\n"))
    status, _, err = run(capsys, "--url", url, "use", "--from", "-")
    assert status == 1
    assert err.splitlines()[-1] == "scheduled 1, skipped 0, not found 1, failed 0"


def test_use_stops_at_an_error_every_id_would_meet(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.require_iam(ACCESS_KEY, SECRET_KEY)
    ids = [f"sess-{number:06d}" for number in range(1, 201)]

    status, out, err = run(capsys, "--url", url, "use", "--workers", "2", *ids)

    assert status == 1
    assert out == ""
    assert err.count("error: 403 Forbidden") == 1
    assert "not attempted" in err.splitlines()[-1]
    assert len(api.requests) < 50


def test_a_validation_error_lists_the_fields(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.script(
        "/batch/sessions",
        422,
        body={
            "message": "Invalid request",
            "errors": [{"field": "batch_id", "message": "String should have at least 1 character", "type": "x"}],
        },
    )

    status, _, err = run(capsys, "--url", url, "sessions", "b")

    assert status == 1
    assert err == "error: 422 Invalid request\n  batch_id: String should have at least 1 character\n"


def test_an_unreachable_api_says_it_is_retrying_then_fails_in_one_readable_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    monkeypatch.setattr(cli, "Client", functools.partial(Client, sleep=sleeps.append))

    status, _, err = run(capsys, "--url", "http://127.0.0.1:9", "batch", "b-1")

    assert status == 1
    *retrying, error = err.splitlines()
    assert len(retrying) == 5  # one line per retry of the default 5, before each wait
    for attempt, line in enumerate(retrying, start=2):
        assert line.startswith("retrying http://127.0.0.1:9: ")
        assert "refused" in line
        assert f"attempt {attempt} of 6 " in line
    assert error.startswith("error: cannot reach http://127.0.0.1:9: ")


def test_the_url_may_come_from_the_environment(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api.add_batch(1)
    monkeypatch.setenv("CLICKSTREAM_URL", url)

    status, out, _ = run(capsys, "batch", "b-0001")

    assert status == 0
    assert json.loads(out)["batch_id"] == "b-0001"


@pytest.mark.usefixtures("credentials")
def test_iam_signs_requests(url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.require_iam(ACCESS_KEY, SECRET_KEY)
    api.add_batch(1)

    assert run(capsys, "--url", url, "batch", "b-0001")[:2] == (1, "")
    assert run(capsys, "--url", url, "--iam", "batch", "b-0001")[0] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["batch", "b-1"],  # no URL anywhere
        ["--url", "127.0.0.1:3000", "batch", "b-1"],
        ["--url", "http://x", "--stack", "s", "batch", "b-1"],
        ["--url", "http://x"],
        ["--url", "http://x", "frobnicate"],
        ["--url", "http://x", "sessions"],
        ["--url", "http://x", "sessions", "b-1", "--events-limit", "1001"],
        ["--url", "http://x", "sessions", "b-1", "--page-size", "ten"],
        ["--url", "http://x", "use"],
        ["--url", "http://x", "use", "s-1", "--from", "ids.txt"],
        ["--url", "http://x", "use", "--from", "/no/such/file"],
        ["--url", "http://x", "complete", "s-1"],
        ["--url", "http://x", "complete", "s-1", "--status", "finished"],
        ["--url", "http://x", "tasks", "--status", "all"],
        ["--url", "http://x", "erase"],
        ["--url", "http://x", "erase", "u-1", "--poll", "5"],
        ["--url", "http://x", "erase", "u-1", "--wait", "--poll", "0"],
        ["--url", "http://x", "erase", "u-1", "--wait", "--poll", "soon"],
        ["--url", "http://x", "erasure"],
    ],
)
def test_bad_usage_exits_2_without_a_request(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(argv)

    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "usage: clickstream" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["sessions"],
        ["batch"],
        ["batches"],
        ["release"],
        ["session"],
        ["use"],
        ["tasks"],
        ["complete"],
        ["erase"],
        ["erasure"],
    ],
)
def test_help_describes_and_gives_examples(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main([*command, "--help"])

    assert raised.value.code == 0
    text = capsys.readouterr().out
    assert "examples:\n  clickstream " in text or "examples:\n  jq " in text
    assert len(text.splitlines()) > 8


# --stack


def stubbed_cloudformation(outputs: list[dict[str, str]] | None, *, error: str | None = None) -> Any:
    client, stubber = stubbed_client("cloudformation")
    if error is not None:
        stubber.add_client_error("describe_stacks", "ValidationError", error, expected_params={"StackName": "cs"})
    else:
        stack = {"StackName": "cs", "CreationTime": "2024-01-01T00:00:00Z", "StackStatus": "CREATE_COMPLETE"}
        if outputs is not None:
            stack["Outputs"] = outputs  # type: ignore[assignment]
        stubber.add_response("describe_stacks", {"Stacks": [stack]}, expected_params={"StackName": "cs"})
    stubber.activate()
    return client


@pytest.mark.usefixtures("credentials")
def test_stack_reads_the_api_url_and_signs(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api.require_iam(ACCESS_KEY, SECRET_KEY)
    api.add_batch(2)
    asked: list[str | None] = []

    def cloudformation_client(session: botocore.session.Session, region: str | None) -> Any:
        asked.append(region)
        outputs = [{"OutputKey": "Other", "OutputValue": "x"}, {"OutputKey": "ApiUrl", "OutputValue": url}]
        return stubbed_cloudformation(outputs)

    monkeypatch.setattr(cli, "cloudformation_client", cloudformation_client)

    status, out, err = run(capsys, "--stack", "cs", "--region", IAM_REGION, "sessions", "b-0001")

    assert (status, err) == (0, "")
    assert len(json_lines(out)) == 2
    assert asked == [IAM_REGION]


@pytest.mark.parametrize(
    ("outputs", "error", "message"),
    [
        ([], None, "error: stack 'cs' has no ApiUrl output; is it the clickstream stack?\n"),
        (None, "Stack with id cs does not exist", "error: cannot read stack 'cs': Stack with id cs does not exist\n"),
    ],
)
@pytest.mark.usefixtures("credentials")
def test_stack_problems_are_reported(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    outputs: list[dict[str, str]] | None,
    error: str | None,
    message: str,
) -> None:
    monkeypatch.setattr(
        cli, "cloudformation_client", lambda session, region: stubbed_cloudformation(outputs, error=error)
    )

    assert run(capsys, "--stack", "cs", "batches") == (1, "", message)


def test_stack_without_a_region_says_how_to_give_one(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "--stack", "cs", "batches")

    assert status == 1
    assert err.startswith("error: no AWS region to find stack 'cs' in: pass --region")


# The installed command, in its own process


def command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "clickstream_client", *argv]


def test_piping_into_head_stops_quietly(url: str, api: FakeApi) -> None:
    api.add_batch(1500, events_per_session=3)
    producer = subprocess.Popen(
        command("--url", url, "sessions", "b-0001"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert producer.stdout is not None
    assert producer.stderr is not None
    first_line = producer.stdout.readline()
    producer.stdout.close()  # as `head -n 1` does once it has its line
    status = producer.wait(timeout=30)

    assert json.loads(first_line)["session_number"] == 1
    assert producer.stderr.read() == b""
    assert status == 0


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "clickstream"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)

    assert result.returncode == 0
    assert result.stdout.startswith("clickstream ")


def test_the_client_does_not_import_the_services_code() -> None:
    probe = (
        "import sys, clickstream_client.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'clickstream'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": ""}
    )

    assert result.stdout == "[]\n"


def test_report_writes_the_page_and_opens_it_when_asked(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = api.add_batch(2, release_id="r1")
    page = "<!DOCTYPE html><html><body>\u2615 report</body></html>"
    api.report_pages[batch_id] = page
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    out_file = tmp_path / "page.html"

    status, out, err = run(capsys, "--url", url, "report", batch_id, "--out", str(out_file), "--open")

    assert status == 0
    assert out == ""
    assert out_file.read_text(encoding="utf-8") == page
    assert f"report written to {out_file}" in err
    assert opened == [out_file.resolve().as_uri()]


def test_report_of_a_batch_not_exported_is_an_api_error_and_writes_nothing(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = api.add_batch(2, release_id="r1")
    folder = tmp_path / "here"
    folder.mkdir()
    monkeypatch.chdir(folder)

    status, _, err = run(capsys, "--url", url, "report", batch_id)

    assert status == 1
    assert "not exported yet" in err
    assert list(folder.iterdir()) == []
