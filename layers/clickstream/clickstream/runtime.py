"""The container's service instance, built once on first use (not at import, so tests can set the environment)."""

from __future__ import annotations

import threading

from clickstream.observability import PowertoolsTelemetry
from clickstream.service import Clickstream
from clickstream.settings import get_settings
from clickstream.storage import Storage

_lock = threading.Lock()
_instances: dict[str, Clickstream] = {}


def get_service() -> Clickstream:
    service = _instances.get("service")
    if service is None:
        with _lock:  # the local server calls handlers from many threads at once
            service = _instances.get("service")
            if service is None:
                settings = get_settings()
                service = Clickstream(Storage.from_settings(settings), settings, telemetry=PowertoolsTelemetry())
                _instances["service"] = service
    return service


def reset() -> None:
    """Forget the service and settings; the next call rebuilds them from the environment."""
    with _lock:
        _instances.clear()
        get_settings.cache_clear()
