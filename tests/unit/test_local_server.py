"""The local server's own answers, without a network: why it refused a request under LOCAL_AUTH=iam (logged,
while the body stays API Gateway's), the API's page, and the record `make invoke` finds it by."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.test import Client

from local import sigv4
from local.run_record import RunRecord, read_record, remove_record, write_record
from local.server import LocalApi, LocalCredentials

KEY, SECRET, REGION = "local", "local", "us-east-1"
DOCUMENT = {"openapi": "3.1.0", "info": {"title": "Clickstream service", "version": "1"}, "paths": {}}


class RecordedFunctions:
    """Stands in for the functions: records which were called, answers 200."""

    routes: ClassVar[dict[str, str]] = {"GET /batches": "BatchSessionsFunction"}

    def __init__(self) -> None:
        self.called: list[str] = []

    def invoke(self, function_id: str, event: Any) -> Any:
        self.called.append(function_id)
        return {"statusCode": 200, "body": "{}"}


def local_api(credentials: LocalCredentials | None = None, functions: RecordedFunctions | None = None) -> Client:
    functions = functions or RecordedFunctions()
    return Client(LocalApi(functions, openapi_document=DOCUMENT, credentials=credentials))  # type: ignore[arg-type]


def signed_headers(access_key: str = KEY, secret_key: str = SECRET) -> dict[str, str]:
    request = AWSRequest(method="GET", url="http://localhost/batches")
    SigV4Auth(Credentials(access_key, secret_key), "execute-api", REGION).add_auth(request)
    return dict(request.headers.items())


# Headers are signed when the test runs (signed at collection, they would be stale by then in a long run).
@pytest.mark.parametrize(
    ("sign", "clock_ahead_s", "reason"),
    [
        (dict, 0, "unsigned"),
        (lambda: signed_headers(access_key="someone-else"), 0, "unknown access key 'someone-else'"),
        (lambda: signed_headers(secret_key="not-the-secret"), 0, "bad signature"),  # noqa: S106 - wrong on purpose
        (signed_headers, 3600, "stale date"),
    ],
    ids=["unsigned", "unknown key", "bad signature", "stale date"],
)
def test_a_refused_request_is_logged_with_its_reason_and_answered_as_api_gateway_does(
    sign: Callable[[], dict[str, str]],
    clock_ahead_s: float,
    reason: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The server's clock an hour ahead of the signer's: the signature is an hour old.
    clock = SimpleNamespace(time=lambda: time.time() + clock_ahead_s, strptime=time.strptime)
    monkeypatch.setattr(sigv4, "time", clock)
    functions = RecordedFunctions()
    with caplog.at_level(logging.WARNING, logger="clickstream.local"):
        answer = local_api(LocalCredentials(KEY, SECRET), functions).get(
            "/batches", headers={"Host": "localhost", **sign()}
        )
    assert answer.status_code == 403
    assert answer.get_json() == {"message": "Forbidden"}
    assert functions.called == []
    assert reason in caplog.text
    assert "GET /batches" in caplog.text


def test_a_request_signed_by_the_key_reaches_the_function() -> None:
    functions = RecordedFunctions()
    answer = local_api(LocalCredentials(KEY, SECRET), functions).get(
        "/batches", headers={"Host": "localhost", **signed_headers()}
    )
    assert answer.status_code == 200
    assert functions.called == ["BatchSessionsFunction"]


def test_the_api_has_a_page_built_from_powertools_swagger_ui_with_nothing_from_a_cdn() -> None:
    api = local_api()
    root = api.get("/")
    assert root.status_code == 302
    assert root.headers["Location"] == "/docs"
    page = api.get("/docs")
    assert page.status_code == 200
    assert page.content_type.startswith("text/html")
    html = page.get_data(as_text=True)
    assert "SwaggerUIBundle" in html  # the script is inlined
    assert "<script src=" not in html
    assert "<link rel='stylesheet'" not in html
    assert '"title": "Clickstream service"' in html
    assert api.get("/docs?format=json").get_json() == DOCUMENT  # what the page's own link fetches
    assert api.get("/openapi.json").get_json() == DOCUMENT


def test_the_page_needs_no_signature_like_the_document() -> None:
    api = local_api(LocalCredentials(KEY, SECRET))
    assert api.get("/docs").status_code == 200
    assert api.get("/batches").status_code == 403


def test_a_run_record_names_the_servers_aws_and_is_removed_only_by_its_own_server(tmp_path: Path) -> None:
    mine = RunRecord("http://127.0.0.1:3000", "http://127.0.0.1:4566", "http://127.0.0.1:8000", os.getpid())
    write_record(3000, mine, tmp_path)
    assert read_record(3000, tmp_path) == mine
    assert read_record(3001, tmp_path) is None  # another PORT: another server
    remove_record(3000, pid=os.getpid() + 1, run_dir=tmp_path)  # a server that has since been replaced
    assert read_record(3000, tmp_path) == mine
    remove_record(3000, pid=os.getpid(), run_dir=tmp_path)
    assert read_record(3000, tmp_path) is None
