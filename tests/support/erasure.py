"""Erasures for tests: a request recorded as POST /user/erase records it, and what sessions have in the tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import boto3

from clickstream.records import Erasure
from clickstream.service import Clickstream
from local.dynamodb import LOCAL_REGION

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
    local/erasures.py to run: the payloads the handler takes, the answers it gives."""

    def __init__(self, service: Clickstream) -> None:
        self._steps = service.erasure_steps

    def invoke(self, function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        steps, erasure_id = self._steps, event["erasure_id"]
        calls: dict[str, Callable[[], dict[str, Any]]] = {
            "begin": lambda: asdict(steps.begin(erasure_id)),
            "find": lambda: steps.find(erasure_id),
            "unclaim": lambda: steps.unclaim(erasure_id),
            "purge": lambda: steps.purge(erasure_id),
            "account": lambda: steps.account(erasure_id, event["batch_id"], event["live"]),
            "rewrite": lambda: steps.rewrite(erasure_id, event["batch_id"]),
            "versions": lambda: steps.versions(erasure_id, event["batch_id"], event["replaced_keys"]),
            "finish": lambda: steps.finish(erasure_id, event["datasets"]),
            "fail": lambda: steps.fail(erasure_id, event["error"]),
        }
        return calls[event["step"]]()
