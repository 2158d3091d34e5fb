"""Reading batches (contract 7.4): `GET /batch` and `GET /batches` through the real handler."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from clickstream.service import Clickstream
from tests.integration.conftest import Get
from tests.support.datasets import run_export
from tests.support.domain import new_session


def test_a_batch_moves_from_collecting_to_released_to_exported(get: Get, service: Clickstream) -> None:
    batch_id = service.register(new_session()).batch_id
    collecting = get("/batch", batch_id=batch_id)
    assert collecting.status == 200
    assert collecting.body["status"] == "collecting"
    assert collecting.body["opened_at"] > 0
    nulls = ("release_id", "released_at", "session_count", "dataset", "metrics", "click_model")
    assert {name: collecting.body[name] for name in nulls} == dict.fromkeys(nulls)

    release = service.release("release-v").model_dump()
    released = get("/batch", batch_id=batch_id).body
    assert (released["status"], released["release_id"], released["session_count"]) == ("released", "release-v", 1)
    assert released["released_at"] == release["released_at"]
    assert released["dataset"]["status"] == "pending"
    assert released["dataset"]["manifest"].startswith("file://")
    assert (released["metrics"], released["click_model"], released["dataset"]["judgments"]) == (None, None, None)

    run_export(service, Path(service.settings.lake_dir), "release-v")
    exported = get("/batch", batch_id=batch_id).body
    judgments = exported["dataset"]["judgments"]
    assert judgments["uri"] == released["dataset"]["manifest"].replace("sessions/", "judgments/").replace(
        "manifest.json", "judgments.jsonl.gz"
    )
    assert exported["dataset"] | {"exported_at": 0} == {
        "judgments": judgments,
        "status": "exported",
        "manifest": released["dataset"]["manifest"],
        "exported_at": 0,
        "session_count": 1,
        "event_count": 0,
        "parts": 1,
        "report": released["dataset"]["manifest"]
        .replace("sessions/", "reports/")
        .replace("manifest.json", "report.html"),
    }
    assert exported["metrics"]["sessions"] == 1
    assert (exported["click_model"]["sessions"], exported["click_model"]["impressions"]) == (1, 2)  # 2 results


def test_an_unknown_batch_is_404(get: Get) -> None:
    answer = get("/batch", batch_id="b-unknown")
    assert (answer.status, answer.body) == (404, {"message": "Batch with id=b-unknown not found"})


def test_batches_come_newest_first_the_collecting_one_first_and_page_on(get: Get, service: Clickstream) -> None:
    released = []
    for n in range(5):
        service.register(new_session())
        released.append(service.release(f"release-{n}").batch_id)
    collecting = service.register(new_session()).batch_id
    first = get("/batches", limit="3").body
    assert [batch["batch_id"] for batch in first["batches"]] == [collecting, released[4], released[3]]
    assert first["batches"][0]["status"] == "collecting"
    assert first["next"] == released[3]
    second = get("/batches", limit="3", before=first["next"]).body
    assert [batch["batch_id"] for batch in second["batches"]] == [released[2], released[1], released[0]]
    assert second["next"] is None
    assert get("/batches").body["next"] is None  # the default limit (20) holds them all


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/batch", {}, "batch_id"),
        ("/batch", {"batch_id": ""}, "batch_id"),
        ("/batch", {"batch_id": "b\x01"}, "batch_id"),
        ("/batches", {"limit": "0"}, "limit"),
        ("/batches", {"limit": "101"}, "limit"),
        ("/batches", {"limit": "many"}, "limit"),
        ("/batches", {"before": ""}, "before"),
    ],
)
def test_bad_input_is_422_naming_the_field(get: Get, path: str, query: dict[str, str], field: str) -> None:
    answer = get(path, **copy.deepcopy(query))
    assert answer.status == 422, answer.body
    assert field in [problem["field"] for problem in answer.body["errors"]]
