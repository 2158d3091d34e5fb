"""IAM: with iam=True every request is SigV4-signed with the standard credential chain, and the fake API,
checking like API Gateway's AWS_IAM authoriser, accepts exactly what was signed by the right credentials."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from local.sigv4 import is_signed_by

from clickstream_client import Client, ConfigurationError, Forbidden
from clickstream_client.auth import region_from_url
from conftest import ACCESS_KEY, SECRET_KEY
from fake_api import IAM_REGION, FakeApi


@pytest.fixture
def iam_api(api: FakeApi) -> FakeApi:
    api.require_iam(ACCESS_KEY, SECRET_KEY)
    api.add_batch(3, events_per_session=1)
    return api


@pytest.mark.usefixtures("credentials")
def test_signed_requests_are_accepted(url: str, iam_api: FakeApi) -> None:
    client = Client(url, iam=True)

    assert client.region == IAM_REGION
    assert client.get_session("sess-000001")["session_id"] == "sess-000001"  # GET with a query
    assert client.use_for_improvement("sess-000001")["status"] == "scheduled"  # POST with a body
    assert len(list(client.iter_sessions("b-0001", page_size=2))) == 3
    assert client.register_session(session_id="a b+c/é", search_query="ü", search_results=[])["session_number"] == 4
    assert client.get_session("a b+c/é")["search_query"] == "ü"
    assert {request.status for request in iam_api.requests} == {200}


def test_unsigned_requests_are_forbidden(url: str, iam_api: FakeApi) -> None:
    with pytest.raises(Forbidden) as raised:
        Client(url).get_session("sess-000001")

    assert raised.value.status == 403
    assert raised.value.body == {"message": "Forbidden"}


def test_requests_signed_with_other_credentials_are_forbidden(
    url: str, iam_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")

    with pytest.raises(Forbidden):
        Client(url, iam=True, region=IAM_REGION).get_session("sess-000001")


@pytest.mark.usefixtures("credentials")
def test_requests_signed_for_another_region_are_forbidden(url: str, iam_api: FakeApi) -> None:
    with pytest.raises(Forbidden):
        Client(url, iam=True, region="eu-west-1").get_session("sess-000001")


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize(("offset_seconds", "accepted"), [(-240, True), (240, True), (-360, False), (360, False)])
def test_signatures_older_or_newer_than_five_minutes_are_forbidden(
    url: str, iam_api: FakeApi, offset_seconds: float, accepted: bool
) -> None:
    iam_api.clock_offset_seconds = offset_seconds
    client = Client(url, iam=True, max_retries=0)

    if accepted:
        client.get_batch("b-0001")
    else:
        with pytest.raises(Forbidden):
            client.get_batch("b-0001")


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize(
    "tamper",
    ["body", "query", "path", "method", "content-type", "date"],
)
def test_requests_changed_after_signing_are_forbidden(url: str, iam_api: FakeApi, tamper: str) -> None:
    auth = Client(url, iam=True)._auth
    assert auth is not None
    body = json.dumps({"session_id": "sess-000001"}).encode()
    request = requests.Request(
        "POST",
        f"{url}/session/use-for-improvement?x=1",
        data=body,
        headers={"Content-Type": "application/json"},
        auth=auth,
    ).prepare()
    with requests.Session() as http:
        assert http.send(request).status_code == 200  # as signed

        if tamper == "body":
            request.body = body.replace(b"000001", b"000002")
        elif tamper == "query":
            request.url = f"{url}/session/use-for-improvement?x=2"
        elif tamper == "path":
            request.url = f"{url}/session/irrelevant?x=1"
        elif tamper == "method":
            request.method = "PUT"
        elif tamper == "content-type":
            request.headers["Content-Type"] = "text/plain"
        else:
            request.headers["X-Amz-Date"] = "20200101T000000Z"
        assert http.send(request).status_code == 403


@pytest.mark.usefixtures("credentials")
def test_session_credentials_send_their_token_signed(
    url: str, iam_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-123")
    auth = Client(url, iam=True)._auth
    assert auth is not None

    request = requests.Request("GET", f"{url}/batch?batch_id=b-0001", auth=auth).prepare()

    assert request.headers["X-Amz-Security-Token"] == "token-123"
    assert "x-amz-security-token" in request.headers["Authorization"]
    with requests.Session() as http:
        assert http.send(request).status_code == 200


def test_credentials_come_from_a_profile(url: str, iam_api: FakeApi, isolated_aws: Path) -> None:
    isolated_aws.write_text(
        textwrap.dedent(f"""\
            [profile analytics]
            region = {IAM_REGION}
            aws_access_key_id = {ACCESS_KEY}
            aws_secret_access_key = {SECRET_KEY}
            """)
    )

    client = Client(url, iam=True, profile="analytics")

    assert client.region == IAM_REGION
    assert client.get_batch("b-0001")["batch_id"] == "b-0001"


def test_rotated_credentials_are_picked_up(url: str, iam_api: FakeApi, isolated_aws: Path, tmp_path: Path) -> None:
    # credential_process hands out short-lived credentials, so botocore refreshes them as they expire.
    current_key = tmp_path / "current-key"
    current_key.write_text("first")
    process = tmp_path / "credentials.py"
    process.write_text(
        textwrap.dedent(f"""\
            import datetime, json, pathlib
            name = pathlib.Path({str(current_key)!r}).read_text()
            expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
            print(json.dumps({{"Version": 1, "AccessKeyId": "AKID" + name.upper(), "SecretAccessKey": "secret-" + name,
                              "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}}))
            """)
    )
    isolated_aws.write_text(f"[profile rotating]\ncredential_process = {sys.executable} {process}\n")
    client = Client(url, iam=True, profile="rotating", region=IAM_REGION, max_retries=0)

    iam_api.require_iam("AKIDFIRST", "secret-first")
    client.get_batch("b-0001")

    current_key.write_text("second")
    iam_api.require_iam("AKIDSECOND", "secret-second")
    client.get_batch("b-0001")

    assert [request.status for request in iam_api.requests] == [200, 200]


def test_no_credentials_is_a_clear_error_before_any_request(url: str, api: FakeApi) -> None:
    with pytest.raises(ConfigurationError, match="no AWS credentials found"):
        Client(url, iam=True, region=IAM_REGION)
    assert api.requests == []


def test_an_unknown_profile_is_a_clear_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="nope"):
        Client(url, iam=True, profile="nope")


@pytest.mark.usefixtures("credentials")
def test_no_region_is_a_clear_error(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    with pytest.raises(ConfigurationError, match="no AWS region"):
        Client(url, iam=True)


@pytest.mark.usefixtures("credentials")
def test_the_region_of_an_execute_api_url_wins_over_the_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    execute_api = "https://a1b2c3.execute-api.eu-central-1.amazonaws.com"

    assert Client(execute_api, iam=True).region == "eu-central-1"
    assert Client(execute_api, iam=True, region="ap-south-1").region == "ap-south-1"
    assert Client("https://api.example.com", iam=True).region == "us-east-1"


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://a1b2c3.execute-api.eu-west-1.amazonaws.com", "eu-west-1"),
        ("https://a1b2c3.execute-api.us-gov-west-1.amazonaws.com/prod/", "us-gov-west-1"),
        ("https://a1b2c3-vpce-0123.execute-api.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("https://api.example.com", None),
        ("http://127.0.0.1:3000", None),
    ],
)
def test_region_from_url(url: str, region: str | None) -> None:
    assert region_from_url(url) == region


def _signed_by_botocore(body: bytes, extra_headers: dict[str, str] | None = None) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url="http://api.test/x?a=1",
        data=body,
        headers={"Content-Type": "application/json", **(extra_headers or {})},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", IAM_REGION).add_auth(request)
    return {**dict(request.headers.items()), "Host": "api.test"}  # as an HTTP client sends it


def verify(headers: dict[str, str], body: bytes = b"{}") -> bool:
    """The verifier's answer for ``POST /x?a=1`` received with these headers and body."""
    return is_signed_by(
        method="POST",
        path="/x",
        query_string="a=1",
        headers=headers,
        body=body,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=IAM_REGION,
    )


def test_the_verifier_checks_a_declared_payload_hash_against_the_body() -> None:
    body = b'{"a": 1}'
    headers = _signed_by_botocore(body, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})

    assert verify(headers, body)
    assert not verify(headers, b'{"a": 2}')


def test_the_verifier_refuses_malformed_authorization() -> None:
    headers = _signed_by_botocore(b"{}")

    assert verify(headers)
    for broken in ("", "AWS4-HMAC-SHA256", headers["Authorization"].replace("SignedHeaders=", "Signed=")):
        assert not verify({**headers, "Authorization": broken})
    assert not verify({**headers, "X-Amz-Date": "yesterday"})
    assert not verify({name: value for name, value in headers.items() if name != "Host"})
