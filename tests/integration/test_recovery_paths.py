"""Recovery paths are visible: each rare path an on-call engineer needs after an incident is counted as a
metric and logged with the ids as keys (domain `Telemetry.rare`; Powertools in the functions)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from clickstream.errors import ConflictError, NoCollectingBatch
from clickstream.records import Place
from clickstream.service import Clickstream
from clickstream.settings import Settings
from clickstream.storage import Storage
from local.apigateway import HttpResult
from tests.support import load_event, now_ms
from tests.support.domain import hand_out_number, new_session, unmarked_session


@dataclass
class RecordingTelemetry:
    counts: dict[str, int] = field(default_factory=dict)
    rare_paths: list[tuple[str, dict[str, str | int]]] = field(default_factory=list)

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    def rare(self, name: str, message: str, **ids: str | int) -> None:
        assert message
        self.rare_paths.append((name, ids))
        self.count(name)

    def gauges(self, values: dict[str, tuple[float, str]], at_ms: int) -> None:
        raise AssertionError("the domain measures nothing here")

    def ids_of(self, name: str) -> list[dict[str, str | int]]:
        return [ids for path, ids in self.rare_paths if path == name]


@pytest.fixture
def telemetry() -> RecordingTelemetry:
    return RecordingTelemetry()


@pytest.fixture
def observed(storage: Storage, settings: Settings, telemetry: RecordingTelemetry) -> Clickstream:
    return Clickstream(storage, settings, telemetry=telemetry)


def stalled_claim(storage: Storage, settings: Settings, session_id: str) -> Place:
    """A registration that claimed `session_id` with a number and died before writing it, longer ago than
    the lease; the number it held."""
    place = hand_out_number(storage)
    assert storage.claims.claim(session_id, "dead-token", now_ms() - settings.registration_lease_ms - 1, place)
    return place


def test_a_claim_taken_over_is_reported_with_its_session_id(
    observed: Clickstream, storage: Storage, settings: Settings, telemetry: RecordingTelemetry
) -> None:
    stalled_claim(storage, settings, "sess-stalled")
    observed.register(new_session("sess-stalled"))
    [ids] = telemetry.ids_of("ClaimsTakenOver")
    assert ids["session_id"] == "sess-stalled"


def test_tombstones_written_by_a_release_are_reported_with_its_ids(
    observed: Clickstream, storage: Storage, telemetry: RecordingTelemetry
) -> None:
    batch_id = observed.register(new_session()).batch_id
    hand_out_number(storage)  # handed out, never written
    observed.release("release-t")
    [ids] = telemetry.ids_of("TombstonesWritten")
    assert ids == {"batch_id": batch_id, "release_id": "release-t", "tombstones": 1}


def test_a_registration_moved_by_a_release_is_reported(
    observed: Clickstream, storage: Storage, settings: Settings, telemetry: RecordingTelemetry
) -> None:
    batch_id = observed.register(new_session()).batch_id
    place = stalled_claim(storage, settings, "sess-late")
    observed.release("release-m")  # tombstones the slot the stalled registration was given
    moved = observed.register(new_session("sess-late"))
    assert moved.batch_id != batch_id
    [ids] = telemetry.ids_of("RegistrationsMovedByRelease")
    assert ids == {"session_id": "sess-late", "batch_id": place.batch_id, "session_number": place.session_number}


def test_an_empty_seal_undone_is_reported(
    observed: Clickstream, storage: Storage, telemetry: RecordingTelemetry
) -> None:
    storage.pointer.open_batch("b-empty", now_ms(), 8)
    with pytest.raises(NoCollectingBatch):
        observed.release("release-e")
    assert telemetry.ids_of("EmptySealsUndone") == [{"batch_id": "b-empty", "release_id": "release-e"}]


def test_a_registration_finishing_a_stalled_release_is_reported(
    observed: Clickstream, storage: Storage, telemetry: RecordingTelemetry
) -> None:
    batch_id = observed.register(new_session()).batch_id
    assert storage.pointer.seal("release-stalled", now_ms()) is not None  # a release that stopped right there
    assert observed.register(new_session()).batch_id != batch_id
    assert telemetry.ids_of("StalledReleasesHandedOver") == [{"batch_id": batch_id, "release_id": "release-stalled"}]
    assert observed.release("release-stalled").session_count == 1  # the repeated release settles it


def test_a_read_completing_a_registration_is_reported(
    observed: Clickstream, storage: Storage, telemetry: RecordingTelemetry
) -> None:
    place = unmarked_session(observed, storage, "sess-unmarked")
    observed.session_json("sess-unmarked", 0)
    observed.session_json("sess-unmarked", 0)  # completed once; the second read finds it registered
    ids = {"session_id": "sess-unmarked", "batch_id": place.batch_id, "session_number": place.session_number}
    assert telemetry.ids_of("RegistrationsCompletedOnRead") == [ids]


# --- through the functions: Powertools logs and metrics ---------------------------------------------


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """What the functions' logger writes (its handler keeps the stream it was created with)."""
    from clickstream.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def recoveries(log: io.StringIO, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    return [line for line in lines if line.get("recovery") == name]


def published(output: str) -> dict[str, float]:
    """The EMF metric values a function printed."""
    metrics: dict[str, float] = {}
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                metrics[metric["Name"]] = metrics.get(metric["Name"], 0) + sum(document[metric["Name"]])
    return metrics


def test_the_functions_log_a_recovery_with_the_ids_as_keys_and_count_it(
    invoke_http: Callable[[str, dict[str, Any]], HttpResult],
    storage: Storage,
    service: Clickstream,
    capsys: pytest.CaptureFixture[str],
    log_output: io.StringIO,
) -> None:
    place = unmarked_session(service, storage, "sess-logged")
    capsys.readouterr()
    event = load_event("get_session")
    event["queryStringParameters"] = {"session_id": "sess-logged"}
    assert invoke_http("CollectionFunction", event).status == 200
    [line] = recoveries(log_output, "RegistrationsCompletedOnRead")
    assert (line["session_id"], line["batch_id"], line["session_number"]) == (
        "sess-logged",
        place.batch_id,
        place.session_number,
    )
    assert line["level"] == "WARNING"
    assert published(capsys.readouterr().out)["RegistrationsCompletedOnRead"] == 1


def test_a_conflict_returned_is_logged_and_counted(
    invoke_http: Callable[[str, dict[str, Any]], HttpResult],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_output: io.StringIO,
) -> None:
    def conflict(self: Any, new: Any) -> Any:
        raise ConflictError("Registration of session sess-abc123 moved while writing; retry")

    monkeypatch.setattr("clickstream.domain.registration.Registrar.register", conflict)
    capsys.readouterr()
    result = invoke_http("CollectionFunction", load_event("register_session"))
    assert (result.status, result.body) == (
        409,
        {"message": "Registration of session sess-abc123 moved while writing; retry"},
    )
    [line] = recoveries(log_output, "ConflictsReturned")
    assert line["session_id"] == "sess-abc123"  # the request's ids are on every line it logs
    assert published(capsys.readouterr().out)["ConflictsReturned"] == 1
