"""The container's service instance, built once on first use (not at import, so tests can set the environment)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from clickstream.domain.announcements import Outbox
from clickstream.observability import PowertoolsTelemetry
from clickstream.service import Clickstream
from clickstream.settings import get_settings
from clickstream.storage import Storage
from clickstream.storage.bus import EventBus
from clickstream.storage.changes import decode_change
from clickstream.storage.lake import lake_from_settings
from clickstream.storage.machines import ErasureMachine
from clickstream.storage.queue import TaskQueue

T = TypeVar("T")
_lock = threading.Lock()
_instances: dict[str, Any] = {}


def _instance(name: str, build: Callable[[], T]) -> T:
    instance = _instances.get(name)
    if instance is None:
        with _lock:  # the local server calls handlers from many threads at once
            instance = _instances.get(name)
            if instance is None:
                instance = _instances[name] = build()
    return cast(T, instance)


def get_service() -> Clickstream:
    def build() -> Clickstream:
        settings = get_settings()
        return Clickstream(Storage.from_settings(settings), settings, telemetry=PowertoolsTelemetry())

    return _instance("service", build)


def get_outbox() -> Outbox:
    def build() -> Outbox:
        settings = get_settings()
        return Outbox(
            Storage.from_settings(settings),
            EventBus.from_settings(settings),
            TaskQueue.from_settings(settings),
            lake_from_settings(settings),
            PowertoolsTelemetry(),
            decode=decode_change,
            erasures=ErasureMachine.from_settings(settings),
        )

    return _instance("outbox", build)


def reset() -> None:
    """Forget the service and settings; the next call rebuilds them from the environment."""
    with _lock:
        _instances.clear()
        get_settings.cache_clear()
