"""Erasures for tests: a request recorded as POST /user/erase records it, and what a user has in the tables."""

from __future__ import annotations

import secrets
from typing import Any

import boto3

from clickstream.domain.pseudonyms import user_key
from clickstream.records import Erasure
from clickstream.service import Clickstream
from local.dynamodb import LOCAL_REGION
from tests.support import now_ms

SESSION_TABLES = ("SessionIdsTable", "SessionsTable", "EventsTable", "ImprovementTasksTable")


def request_erasure(service: Clickstream, user_id: str) -> Erasure:
    """A pending erasure of `user_id` (its id `e-<13-digit ms>-<12 hex>`), as the request route stores it."""
    stored = service.user_ids.stored(user_id)
    erasure = Erasure(
        erasure_id=f"e-{now_ms():013d}-{secrets.token_hex(6)}",
        user_key=user_key(stored),
        status="pending",
        requested_at=now_ms(),
        stored_user_id=stored,
    )
    return service.storage.erasures.request(erasure)


def session_items(tables: dict[str, str], session_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every item of the session tables that belongs to one of `session_ids`, by table, in a stable order."""
    client = boto3.client("dynamodb", region_name=LOCAL_REGION)
    found: dict[str, list[dict[str, Any]]] = {}
    for table_id in SESSION_TABLES:
        items = client.scan(TableName=tables[table_id], ConsistentRead=True)["Items"]
        ours = [item for item in items if item.get("session_id", {}).get("S") in session_ids]
        found[table_id] = sorted(ours, key=repr)
    return found
