"""The Lambda tier's fixtures: the package built once per run, one warm runtime process per function, the
X-Ray daemon stand-in, and the same state for the in-process path to compare with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.deployed import DeployedFunctions, Surroundings
from local.dynamodb import EmbeddedAws
from local.lambda_package import LambdaPackage, make_writable, package_functions
from local.xray_daemon import XRayDaemon
from tests.support import TEST_ENVIRONMENT
from tests.support.lambda_tier import BUCKET, State


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaPackage]:
    work = tmp_path_factory.mktemp("lambda")
    yield package_functions(work)
    make_writable(work)  # so that pytest can remove it


@pytest.fixture(scope="session")
def xray() -> Iterator[XRayDaemon]:
    daemon = XRayDaemon()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def deployed(
    dynamodb: EmbeddedAws, lambda_package: LambdaPackage, xray: XRayDaemon, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeployedFunctions]:
    scratch = tmp_path_factory.mktemp("lambda-scratch")
    around = Surroundings(
        dynamodb.endpoint, xray.address, scratch, resources={"DatasetBucket": BUCKET}, extra=TEST_ENVIRONMENT
    )
    functions = DeployedFunctions(lambda_package, around)
    functions.start()
    yield functions
    functions.stop()
    make_writable(scratch)


@pytest.fixture
def state(tables: dict[str, str], dynamodb: EmbeddedAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> State:
    fresh = State(dynamodb, monkeypatch, tmp_path / "lake")
    fresh.reset()
    return fresh
