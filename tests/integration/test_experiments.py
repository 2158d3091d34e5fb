"""Experiments end to end (contract 15): sessions tagged through the service are stored and read back with their
experiment and teams, exported into the dataset, counted into the manifest's `experiments`, GET /batch and
BatchExported, and merged across releases by GET /experiment; the handlers answer 200, 404 and 422."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from clickstream.domain.announcements import announcements_of, exported
from clickstream.domain.datasets.experiments import experiments_report
from clickstream.errors import ExperimentNotFound
from clickstream.models import NewEvent
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from clickstream.storage.batch_records import batch_key
from clickstream.storage.changes import decode_change
from local.apigateway import HttpResult
from tests.support import now_ms, sample_event
from tests.support.datasets import dataset_sessions, manifest, run_export
from tests.support.domain import all_sessions, new_session
from tests.support.experiments import TaggedSession, range_sums
from tests.unit.test_experiments import SESSIONS, UNTAGGED


@pytest.fixture
def exporting(storage: Storage, settings: Settings, tmp_path: Path) -> Clickstream:
    """Ranges of 4 numbers, so the fixture's sessions are counted by several ranges and merged."""
    configured = settings.model_copy(update={"export_range_sessions": 4, "lake_dir": str(tmp_path / "lake")})
    return Clickstream(storage, configured)


def register(service: Clickstream, sessions: Sequence[TaggedSession], prefix: str) -> list[str]:
    ids = []
    for index, session in enumerate(sessions):
        shown = [{"object_id": object_id, **({"team": team} if team else {})} for object_id, team in session.results]
        tag = None if session.experiment is None else {"id": session.experiment[0], "variant": session.experiment[1]}
        registration = service.register(new_session(f"{prefix}-{index:02d}", search_results=shown, experiment=tag))
        events = [
            NewEvent(event_id=e.event_id, object_id=e.object_id, event_type=e.event_type, created_at=now_ms() - 5_000)
            for e in session.events
        ]
        if events:
            service.add_events(registration.session_id, events)
        ids.append(registration.session_id)
    return ids


def release_and_export(service: Clickstream, release_id: str) -> str:
    batch_id = service.release(release_id).batch_id
    assert run_export(service, Path(service.settings.lake_dir), release_id, f"export-{release_id}") is not None
    return batch_id


def test_sessions_keep_their_experiment_and_teams_in_every_read_and_the_dataset(exporting: Clickstream) -> None:
    tagged, untagged = register(exporting, SESSIONS[9:10], "t"), register(exporting, UNTAGGED[:1], "u")
    read = json.loads(exporting.session_json(tagged[0], 10))
    assert read["experiment"] == {"id": "mix", "variant": "interleaved"}
    assert [result["team"] for result in read["search_results"]] == ["a", "b", "a"]
    plain = json.loads(exporting.session_json(untagged[0], 10))
    assert plain["experiment"] is None
    assert [result["team"] for result in plain["search_results"]] == [None]
    batch_id = release_and_export(exporting, "release-tags")
    paged = {session["session_id"]: session for session in all_sessions(exporting, batch_id, 10)}
    exported_lines = {
        line["session_id"]: line for line in dataset_sessions(Path(exporting.settings.lake_dir), batch_id)
    }
    for session_id in (*tagged, *untagged):
        assert exported_lines[session_id] == {"batch_id": batch_id, **paged[session_id]}
    assert paged[tagged[0]]["experiment"] == read["experiment"]


def test_the_export_reports_experiments_in_the_manifest_the_batch_and_the_announcement(
    exporting: Clickstream, storage: Storage
) -> None:
    register(exporting, SESSIONS + UNTAGGED, "s")
    batch_id = release_and_export(exporting, "release-e")
    expected = experiments_report(range_sums(SESSIONS))  # worked out by hand in tests/unit/test_experiments.py
    document = manifest(Path(exporting.settings.lake_dir), batch_id)
    assert document["experiments"] == expected
    view = exporting.batch(batch_id)
    assert view.experiments is not None
    assert [entry.model_dump() for entry in view.experiments] == expected
    assert view.experiments_truncated is False
    record = storage.batches.get(batch_id)
    assert record is not None
    (_, announced) = announcements_of(record, exporting.lake)
    assert announced.detail["experiments"] == expected
    item = storage.dynamo.get(exporting.settings.batches_table, batch_key(batch_id))
    assert item is not None
    from_stream = exported(decode_change(None, item), exporting.lake)  # the record's stream image, decoded
    assert from_stream is not None
    assert from_stream.detail["experiments"] == expected


def test_a_batch_without_experiments_reports_none(exporting: Clickstream, storage: Storage) -> None:
    register(exporting, UNTAGGED, "u")
    batch_id = release_and_export(exporting, "release-none")
    assert manifest(Path(exporting.settings.lake_dir), batch_id)["experiments"] == []
    assert exporting.batch(batch_id).experiments == []
    item = storage.dynamo.get(exporting.settings.batches_table, batch_key(batch_id))
    assert item is not None
    assert "experiment_sums" not in item  # the record of a batch without experiments is as it always was


def test_an_experiment_across_releases_adds_the_batches_up_exactly(exporting: Clickstream, storage: Storage) -> None:
    register(exporting, SESSIONS[:5] + SESSIONS[9:12], "first")
    first = release_and_export(exporting, "release-1")
    register(exporting, SESSIONS[5:9] + SESSIONS[12:], "second")
    second = release_and_export(exporting, "release-2")
    register(exporting, SESSIONS[:3], "held")
    held = exporting.release("release-3").batch_id  # released, not exported: not counted
    storage.experiments.add_batch("ranker-v7", held)  # named, as by an export that died before recording it

    across = exporting.experiment("ranker-v7")
    expected = {entry["id"]: entry for entry in experiments_report(range_sums(SESSIONS))}
    assert across.model_dump() == {**expected["ranker-v7"], "batches": [first, second]}
    assert exporting.experiment("mix").model_dump() == {**expected["mix"], "batches": [first, second]}
    assert exporting.experiment("other").batches == [second]
    with pytest.raises(ExperimentNotFound):
        exporting.experiment("never-run")


def test_exporting_again_names_the_batch_once(exporting: Clickstream, storage: Storage) -> None:
    register(exporting, SESSIONS[:5], "s")
    batch_id = release_and_export(exporting, "release-x")
    record = storage.batches.get(batch_id)
    assert record is not None
    before = exporting.experiment("ranker-v7").model_dump()
    storage.experiments.add_batch("ranker-v7", batch_id)  # what a repeated finish step does
    assert exporting.experiment("ranker-v7").model_dump() == before
    assert storage.experiments.batches_of("ranker-v7") == [batch_id]


def test_the_routes_answer_the_experiment_404_and_422(
    invoke_http: Callable[[str, dict[str, Any]], HttpResult], service: Clickstream
) -> None:
    register(service, SESSIONS[:5], "h")
    release_and_export(service, "release-h")
    found = invoke_http("BatchSessionsFunction", sample_event("get_experiment", query={"experiment_id": "ranker-v7"}))
    assert found.status == 200, found.body
    assert found.body["id"] == "ranker-v7"
    assert [variant["variant"] for variant in found.body["variants"]] == ["b", "control"]
    missing = invoke_http("BatchSessionsFunction", sample_event("get_experiment", query={"experiment_id": "nope"}))
    assert (missing.status, missing.body["message"]) == (404, "No exported batch has the experiment with id=nope")
    for bad in ({"experiment_id": ""}, {}, {"experiment_id": "tab\there"}):
        refused = invoke_http("BatchSessionsFunction", sample_event("get_experiment", query=bad))
        assert refused.status == 422, (bad, refused.body)
        assert "experiment_id" in refused.body["message"]
    body = {"session_id": "bad", "search_query": "q", "search_results": [], "experiment": {"id": "x"}}
    refused = invoke_http("CollectionFunction", sample_event("register_session", body=body))
    assert refused.status == 422
    assert [error["field"] for error in refused.body["errors"]] == ["experiment.variant"]
