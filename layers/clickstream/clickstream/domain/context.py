"""What every protocol of the domain works with, built once per container."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clickstream.concurrency import Fanout
from clickstream.domain.ports import Stores
from clickstream.domain.pseudonyms import UserIds
from clickstream.domain.rules import Clock, now_ms
from clickstream.domain.telemetry import Silent, Telemetry
from clickstream.settings import Settings


@dataclass(frozen=True)
class Context:
    storage: Stores  # the tables, as ports (clickstream.storage.Storage in a container)
    settings: Settings
    fanout: Fanout
    telemetry: Telemetry = field(default_factory=Silent)
    clock: Clock = now_ms
    sleep: Callable[[float], None] = time.sleep
    user_ids: UserIds = field(default_factory=UserIds)  # as sent, unless USER_ID_HASHING=hmac
