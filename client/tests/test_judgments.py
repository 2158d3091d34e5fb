"""`clickstream judgments BATCH_ID`: the batch's judgments, read from the URI its dataset names (file:// or
s3:// with the caller's own credentials), gunzipped to JSON Lines."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.response import StreamingBody

from clickstream_client import cli, judgments
from conftest import ACCESS_KEY, stubbed_client
from fake_api import FakeApi

LINES = [
    {"query": "red shoes", "object_id": "shoe-3", "impressions": 40, "clicks": 9, "attractiveness": 0.31},
    {"query": "red shoes", "object_id": "shoe-17", "impressions": 12, "clicks": 1, "attractiveness": 0.08},
    {"query": "caf\u00e9", "object_id": "cup-1", "impressions": 3, "clicks": 3, "attractiveness": 0.9},
]


def stored_file() -> bytes:
    text = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in LINES)
    return gzip.compress(text.encode("utf-8"), mtime=0)


def described(uri: str, data: bytes) -> dict[str, Any]:
    return {"uri": uri, "pairs": len(LINES), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def exported_locally(api: FakeApi, tmp_path: Path) -> str:
    batch_id = api.add_batch(3, release_id="r1")
    path = tmp_path / "lake" / "judgments" / f"batch_id={batch_id}" / "judgments.jsonl.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(stored_file())
    api.exported(batch_id, described(path.as_uri(), path.read_bytes()))
    return batch_id


def test_judgments_of_a_local_lake_are_json_lines_on_stdout(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    batch_id = exported_locally(api, tmp_path)

    status, out, err = run(capsys, "--url", url, "judgments", batch_id)

    assert (status, err) == (0, "")
    assert [json.loads(line) for line in out.splitlines()] == LINES


def test_judgments_to_a_file_with_progress_on_stderr(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = exported_locally(api, tmp_path)
    monkeypatch.setattr(cli, "_is_terminal", lambda stream: stream is sys.stderr)
    out_file = tmp_path / "judgments.jsonl"

    status, out, err = run(capsys, "--url", url, "judgments", batch_id, "--out", str(out_file))

    assert (status, out) == (0, "")
    assert f"{len(LINES)}/{len(LINES)}" in err
    assert f"{len(LINES)} judgments written to {out_file}" in err
    assert [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()] == LINES


def stubbed_s3(data: bytes | None) -> Any:
    client, stubber = stubbed_client("s3")
    expected = {"Bucket": "lake-bucket", "Key": "judgments/batch_id=b-0001/judgments.jsonl.gz"}
    if data is None:
        stubber.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404, expected)
    else:
        body = StreamingBody(io.BytesIO(data), len(data))
        stubber.add_response("get_object", {"Body": body, "ContentLength": len(data)}, expected)
    stubber.activate()
    return client


@pytest.mark.usefixtures("credentials")
def test_judgments_in_s3_are_read_with_the_callers_own_credentials_and_region(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = api.add_batch(3, release_id="r1")
    data = stored_file()
    api.exported(batch_id, described(f"s3://lake-bucket/judgments/batch_id={batch_id}/judgments.jsonl.gz", data))
    asked: list[tuple[str | None, str | None]] = []

    def s3_client(session: botocore.session.Session, region: str | None) -> Any:
        credentials = session.get_credentials()
        asked.append((None if credentials is None else credentials.access_key, region))
        return stubbed_s3(data)

    monkeypatch.setattr(judgments, "s3_client", s3_client)

    status, out, err = run(capsys, "--url", url, "--region", "eu-west-1", "judgments", batch_id)

    assert (status, err) == (0, "")
    assert [json.loads(line) for line in out.splitlines()] == LINES
    assert asked == [(ACCESS_KEY, "eu-west-1")]


@pytest.mark.usefixtures("credentials")
def test_judgments_missing_from_s3_fail_with_where_they_were_looked_for(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    batch_id = api.add_batch(3, release_id="r1")
    uri = f"s3://lake-bucket/judgments/batch_id={batch_id}/judgments.jsonl.gz"
    api.exported(batch_id, described(uri, b""))
    monkeypatch.setattr(judgments, "s3_client", lambda session, region: stubbed_s3(None))
    out_file = tmp_path / "j.jsonl"

    status, out, err = run(capsys, "--url", url, "judgments", batch_id, "--out", str(out_file))

    assert (status, out) == (1, "")
    assert err == f"error: no judgments at {uri}\n"
    assert not out_file.exists()


def test_a_batch_not_exported_yet_has_no_judgments_to_read(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    batch_id = api.add_batch(2, release_id="r1")

    status, out, err = run(capsys, "--url", url, "judgments", batch_id)

    assert (status, out) == (1, "")
    assert err == f"error: batch {batch_id} has no judgments yet (its dataset is released)\n"


def test_a_file_that_is_not_gzip_fails_clearly(
    url: str, api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    batch_id = api.add_batch(1, release_id="r1")
    path = tmp_path / "judgments.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    api.exported(batch_id, described(path.as_uri(), path.read_bytes()))

    status, out, err = run(capsys, "--url", url, "judgments", batch_id)

    assert (status, out) == (1, "")
    assert err.startswith("error: the judgments file is not readable gzip")
