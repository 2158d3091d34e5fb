"""The Lambda tier (tests/lambda): the same steps through the deployed functions and through the
in-process handlers, and what their answers have in common once ids and times are set aside."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.apigateway import http_result
from local.dynamodb import LOCAL_REGION, EmbeddedAws
from local.runtime_api import InvocationError
from local.template import http_routes, load_template
from tests.conftest import use_fresh_tables
from tests.support import load_event, sample_event

Invoke = Callable[[str, Any], Any]
BUCKET = "clickstream-lake"  # the template's DatasetBucket, on the embedded moto

_BATCH_ID = re.compile(r"\bb-\d{13}-[0-9a-f]{12}\b")
_ERASURE_ID = re.compile(r"\be-\d{13}-[0-9a-f]{12}\b")
_TIMES = re.compile(r"(_at|_until|_after|_ms|timestamp|time)$")
_OPAQUE = {"next", "request_id", "export_id", "expires_at"}


def function_of(event: dict[str, Any]) -> str:
    """The function template.yaml routes a sample event to (the bare release event: BatchReleaseFunction)."""
    if "routeKey" not in event:
        return "BatchReleaseFunction"
    routes = {f"{route.method} {route.path}": route.function_id for route in http_routes(load_template())}
    return routes[event["routeKey"]]


def comparable(value: Any, key: str = "") -> Any:
    """`value` with batch and erasure ids, times and cursors replaced by placeholders (they differ from run to
    run)."""
    if isinstance(value, dict):
        return {name: comparable(member, name) for name, member in value.items()}
    if isinstance(value, list):
        return [comparable(member, key) for member in value]
    if value is not None and (key in _OPAQUE or (_TIMES.search(key) and isinstance(value, int | float))):
        return f"<{key}>"
    if isinstance(value, str):
        return _ERASURE_ID.sub("<erasure_id>", _BATCH_ID.sub("<batch_id>", value))
    return value


def outcome(invoke: Invoke, function_id: str, event: Any) -> dict[str, Any]:
    """What a caller sees: an HTTP status and body, a direct invocation's result, or the function's error."""
    try:
        result = invoke(function_id, event)
    except InvocationError as error:
        return {"error": error.error.get("errorType"), "message": comparable(error.error.get("errorMessage"))}
    except Exception as error:  # the in-process handler raises what Lambda reports by class name
        return {"error": type(error).__name__, "message": comparable(str(error))}
    if isinstance(result, dict) and "statusCode" in result:
        answer = http_result(result)
        return {"status": answer.status, "body": comparable(answer.body)}
    return {"result": comparable(result)}


# The samples whose answer names an id later samples use (the answer's field is the query parameter).
_NAMING = {"register_session": "batch_id", "erase_user": "erasure_id"}


def sample_for(name: str, named: dict[str, str]) -> dict[str, Any]:
    """A sample event; one that names a batch or an erasure names this run's (`named`) instead of the sample's."""
    event = load_event(name)
    query = dict(urllib.parse.parse_qsl(event.get("rawQueryString", "")))
    if set(query) & set(named):
        return sample_event(name, query={**query, **{key: value for key, value in named.items() if key in query}})
    return event


def run_samples(invoke: Invoke, names: list[str]) -> list[dict[str, Any]]:
    """Each named sample event through its function, in order; after a registration, the batch named is the
    registered session's, and after an erasure request the erasure named is the one it answered."""
    outcomes: list[dict[str, Any]] = []
    named: dict[str, str] = {}
    for name in names:
        event = sample_for(name, named)
        if name in _NAMING:
            answer = http_result(invoke(function_of(event), event))
            field = _NAMING[name]
            named.pop(field, None)
            if answer.status in (200, 202):
                named[field] = answer.body[field]
            outcomes.append({"sample": name, "status": answer.status, "body": comparable(answer.body)})
            continue
        outcomes.append({"sample": name, **outcome(invoke, function_of(event), event)})
    return outcomes


class State:
    """Fresh tables, queues and the dataset bucket on the embedded moto; `reset` starts again from nothing,
    so that the deployed functions and the in-process handlers can be given the same state."""

    def __init__(self, dynamodb: EmbeddedAws, monkeypatch: pytest.MonkeyPatch, lake_dir: Path) -> None:
        self._dynamodb = dynamodb
        self.endpoint = dynamodb.endpoint
        self._monkeypatch = monkeypatch
        self._lake_dir = lake_dir
        self.s3 = boto3.session.Session().client("s3", endpoint_url=dynamodb.endpoint, region_name=LOCAL_REGION)

    def reset(self) -> None:
        from clickstream import runtime

        self.tables = use_fresh_tables(self._dynamodb, self._monkeypatch, self._lake_dir)
        self._monkeypatch.setenv("LAKE_BUCKET", BUCKET)  # the in-process handlers write where Lambda's do
        self._monkeypatch.setenv("AWS_ENDPOINT_URL_S3", self._dynamodb.endpoint)
        self.s3.create_bucket(Bucket=BUCKET)
        runtime.reset()


class Invoker:
    """An `invoke` seen as the functions object local.streams delivers stream records to."""

    def __init__(self, invoke: Invoke) -> None:
        self.invoke = invoke


def run_pipeline(invoke: Invoke, state: State, release_id: str) -> list[dict[str, Any]]:
    """What follows a release, each function as the template wires it: the batches and tasks tables' streams
    into OutboxFunction, then the export state machine's steps (plan, each range, judge, finish) into ExportFunction."""
    from local.streams import StreamRelay

    endpoint = state.endpoint
    outcomes: list[dict[str, Any]] = []
    for table in ("BatchesTable", "ImprovementTasksTable"):
        relay = StreamRelay(endpoint, state.tables[table], "OutboxFunction", Invoker(invoke))
        outcomes.append({"stream": table, "records": relay.pump()})
    plan = invoke("ExportFunction", {"step": "plan", "release_id": release_id, "export_id": f"export-{release_id}"})
    outcomes.append({"step": "plan", "result": comparable(plan)})
    ranges = json.loads(state.s3.get_object(Bucket=BUCKET, Key=plan["ranges_key"])["Body"].read())
    for number_range in ranges:
        step = {"step": "range", "job": plan["job"], "range": number_range}
        outcomes.append({"step": "range", **outcome(invoke, "ExportFunction", step)})
    judged = invoke("ExportFunction", {"step": "judge", "job": plan["job"], "ranges": len(ranges)})
    outcomes.append({"step": "judge", "result": comparable(judged)})
    finish = {"step": "finish", "job": plan["job"], "ranges": len(ranges), "judged": judged}
    outcomes.append({"step": "finish", **outcome(invoke, "ExportFunction", finish)})
    return outcomes


def run_erasure(invoke: Invoke) -> list[dict[str, Any]]:
    """The sample erasure request, then the erasure state machine's steps in the order its definition calls
    them into ErasureFunction: begin, find, unclaim, purge; for each batch found account, rewrite (again while
    it says it is not done: RewriteDone) and versions; finish."""
    answer = http_result(invoke("ErasureRequestFunction", load_event("erase_user")))
    outcomes: list[dict[str, Any]] = [
        {"sample": "erase_user", "status": answer.status, "body": comparable(answer.body)}
    ]
    erasure = {"erasure_id": answer.body["erasure_id"]}

    def step(name: str, **payload: Any) -> Any:
        result = invoke("ErasureFunction", {"step": name, **erasure, **payload})
        outcomes.append({"step": name, "result": comparable(result)})
        return result

    step("begin")  # its waits are the machine's Wait states: nothing here writes meanwhile
    found = step("find")
    step("unclaim")
    purged = step("purge")
    datasets = []
    for batch in found["batches"]:
        accounted = step("account", **batch)["accounted"]
        while not (rewritten := step("rewrite", **batch, accounted=accounted))["done"]:
            pass
        versioned = step("versions", batch_id=batch["batch_id"])
        removed = {name: rewritten[name] for name in ("sessions_removed", "events_removed")}
        datasets.append({"live": batch["live"], "rewritten": versioned["rewritten"], **removed})
    step("finish", purged=purged, datasets=datasets)
    return outcomes
