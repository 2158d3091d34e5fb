"""The EventBridge bus the service announces on (contract 7.1).

EventBridge calls: PutEvents on the bus.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3

from clickstream.errors import StorageUnavailable
from clickstream.settings import Settings
from clickstream.storage.plumbing import service_config

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient

SOURCE = "clickstream"


class EventBus:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self._client = client
        self._bus_name = bus_name

    @classmethod
    def from_settings(cls, settings: Settings) -> EventBus:
        config = service_config(settings)
        return cls(boto3.session.Session().client("events", config=config), settings.event_bus_name)

    def put(self, detail_type: str, detail: dict[str, Any]) -> None:
        """One event; StorageUnavailable when EventBridge did not take it (the caller retries)."""
        entry = {
            "EventBusName": self._bus_name,
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
        }
        response = self._client.put_events(Entries=[entry])  # type: ignore[list-item]
        if response.get("FailedEntryCount", 0):
            failure = response["Entries"][0]
            raise StorageUnavailable() from RuntimeError(f"{failure.get('ErrorCode')}: {failure.get('ErrorMessage')}")
