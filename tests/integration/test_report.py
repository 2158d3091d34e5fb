"""The report page of every export (contract 16), through the real export steps and the real handler:
written under reports/ (never beside the parts), named by the manifest and GET /batch, served by
GET /batch/report once the dataset exists, comparing against the previous exported release."""

from __future__ import annotations

import json
from pathlib import Path

from clickstream.domain.datasets.layout import dataset_folder
from clickstream.models import NewEvent
from clickstream.service import Clickstream
from tests.integration.conftest import Get
from tests.support.datasets import manifest, run_export
from tests.support.domain import new_session


def release_batch(service: Clickstream, release_id: str, sessions: int, clicked: int) -> str:
    """A released batch: `sessions` sessions, the first `clicked` of them with a click on their first result."""
    batch_id = ""
    for n in range(sessions):
        registration = service.register(new_session(f"{release_id}-{n}", search_query=f"query {n % 2}"))
        batch_id = registration.batch_id
        if n < clicked:
            service.add_events(registration.session_id, [NewEvent(event_id="c1", object_id="shoe-1")])
    service.release(release_id)
    return batch_id


def lake(service: Clickstream) -> Path:
    return Path(service.settings.lake_dir)


def test_the_page_is_served_once_the_dataset_exists_and_named_by_the_manifest_and_the_batch(
    get: Get, service: Clickstream
) -> None:
    batch_id = release_batch(service, "release-r1", sessions=4, clicked=2)
    before = get("/batch/report", batch_id=batch_id)
    assert before.status == 404
    assert "not exported" in before.body["message"]
    assert get("/batch", batch_id=batch_id).body["dataset"]["report"] is None

    run_export(service, lake(service), "release-r1")
    page_file = lake(service) / f"reports/batch_id={batch_id}/report.html"
    uri = f"file://{page_file.resolve()}"  # as the lake names its objects (storage/lake.py)
    assert manifest(lake(service), batch_id)["report"] == uri
    assert get("/batch", batch_id=batch_id).body["dataset"]["report"] == uri
    assert not list((lake(service) / dataset_folder(batch_id)).glob("*.html"))  # Athena reads that folder whole

    served = get("/batch/report", batch_id=batch_id)
    assert served.status == 200
    assert served.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in served.headers["content-security-policy"]
    assert served.body == page_file.read_text(encoding="utf-8")
    assert "50.0%" in served.body  # the batch's CTR: 2 of 4


def test_unknown_and_bad_batch_ids_are_answered_as_json(get: Get) -> None:
    unknown = get("/batch/report", batch_id="b-0000000000000-nothing")
    assert unknown.status == 404
    assert "b-0000000000000-nothing" in unknown.body["message"]
    assert get("/batch/report").status == 422


def test_the_page_compares_with_the_previous_exported_release_and_trends_over_them(service: Clickstream) -> None:
    first = release_batch(service, "release-t1", sessions=4, clicked=1)
    run_export(service, lake(service), "release-t1")
    unexported = release_batch(service, "release-t2", sessions=2, clicked=2)  # never exported: not compared
    latest = release_batch(service, "release-t3", sessions=4, clicked=3)
    run_export(service, lake(service), "release-t3")

    page = (lake(service) / f"reports/batch_id={latest}/report.html").read_text(encoding="utf-8")
    assert f"previous release: batch {first}" in page
    assert "+50.0 pp since previous" in page  # CTR 75% against 25%
    trend = page[page.index('id="trend-title"') :]
    assert first in trend
    assert latest in trend
    assert unexported not in trend
    assert "over the last 2 releases" in page
    first_page = (lake(service) / f"reports/batch_id={first}/report.html").read_text(encoding="utf-8")
    assert "No earlier exported release to compare with" in first_page
    assert json.loads((lake(service) / f"sessions/batch_id={latest}/manifest.json").read_text())["report"]
