"""Erasures for tests: a request recorded as POST /user/erase records it, and what sessions have in the tables."""

from __future__ import annotations

from typing import Any

import boto3

from clickstream.records import Erasure
from clickstream.service import Clickstream
from local.dynamodb import LOCAL_REGION
from local.lambda_runtime import load_function_module
from local.template import ROOT

SESSION_TABLES = ("SessionIdsTable", "SessionsTable", "EventsTable", "ImprovementTasksTable")


def request_erasure(service: Clickstream, user_id: str) -> Erasure:
    """A pending erasure of `user_id`, as POST /user/erase records it."""
    erasure = service.storage.erasures.get(service.erase_user(user_id).erasure_id)
    assert erasure is not None
    return erasure


def session_items(tables: dict[str, str], session_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every item of the session tables that belongs to one of `session_ids`, by table, in a stable order."""
    client = boto3.client("dynamodb", region_name=LOCAL_REGION)
    found: dict[str, list[dict[str, Any]]] = {}
    for table_id in SESSION_TABLES:
        items = client.scan(TableName=tables[table_id], ConsistentRead=True)["Items"]
        ours = [item for item in items if item.get("session_id", {}).get("S") in session_ids]
        found[table_id] = sorted(ours, key=repr)
    return found


class InProcessSteps:
    """The erasure function's steps called on a service of this process (its clock, its storage's time), for
    local/erasures.py to run: through the handler's own table of steps, so the payloads and answers are the
    handler's."""

    def __init__(self, service: Clickstream) -> None:
        self._steps = service.erasure_steps
        self._dispatch = load_function_module(ROOT / "functions" / "erasure", "app.lambda_handler").STEPS

    def invoke(self, function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._dispatch[event["step"]](self._steps, event)
        return result
