"""Fixtures: a fake API served over HTTP, and an AWS environment that can never reach real credentials."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from fake_api import IAM_REGION, FakeApi, ServedApi

ACCESS_KEY = "AKIDCLIENTTEST"
SECRET_KEY = "client-test-secret"  # noqa: S105 (a made-up key the fake API accepts)


def stubbed_client(service: str) -> tuple[Any, Stubber]:
    """A botocore client of `service` with made-up credentials, and the stubber that answers for it
    (activate it once its answers are added)."""
    client = botocore.session.Session().create_client(
        service, region_name=IAM_REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )
    return client, Stubber(client)


@pytest.fixture(scope="session")
def served() -> Iterator[ServedApi]:
    with ServedApi() as served_api:
        yield served_api


@pytest.fixture
def api(served: ServedApi) -> FakeApi:
    """A fresh, empty API for each test."""
    served.api = FakeApi()
    return served.api


@pytest.fixture
def url(served: ServedApi, api: FakeApi) -> str:
    return served.url


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AWS_* variable of the machine, empty config files, no instance metadata: only what a test sets.
    Returns the path of the (empty) AWS config file a test may write profiles to."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name == "CLICKSTREAM_URL":
            monkeypatch.delenv(name)
    config = tmp_path / "aws-config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return config


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials in the environment that the fake API accepts, once told to require IAM."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", IAM_REGION)


@pytest.fixture
def sleeps() -> list[float]:
    """Pass ``sleep=sleeps.append`` to a Client to record its waits instead of waiting."""
    return []
