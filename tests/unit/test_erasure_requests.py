"""Erasure requests over in-memory ports (domain/erasure/requests.py, contract 17.3): what is recorded from a
raw user id under each way user ids are stored, the ids' form and order, and the guard registration asks.
The routes, the records in DynamoDB and the guard's cache interval: tests/integration/test_erasure_requests.py."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest

from clickstream.domain.pseudonyms import PSEUDONYM_PREFIX
from clickstream.erasure_models import ErasureView
from clickstream.errors import ErasureNotFound, UserBeingErased
from clickstream.service import Clickstream
from clickstream.settings import Settings
from tests.support.domain import new_session
from tests.support.late import FakeClock
from tests.support.memory import MemoryLake, MemoryStores

TABLES = {f"{name}_table": f"memory-{name}" for name in ("sessions", "session_ids", "events", "batches", "tasks")}
KEY = "unit-test-key"
USER = "alice@example.com"
CACHE_MS = Settings.model_fields["batch_state_cache_ms"].default


def container(stores: MemoryStores, clock: FakeClock, **settings: Any) -> Clickstream:
    configured = Settings.model_validate({**TABLES, "user_datasets_table": "memory-user-datasets", **settings})
    return Clickstream(stores, configured, lake=MemoryLake(), clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize(
    ("settings", "stored"),
    [
        ({}, USER),
        (
            {"user_id_hashing": "hmac", "user_id_hmac_key": KEY},
            PSEUDONYM_PREFIX + hmac.new(KEY.encode(), USER.encode(), hashlib.sha256).hexdigest(),
        ),
    ],
    ids=["none", "hmac"],
)
def test_the_erasure_is_recorded_with_the_id_as_stored_and_its_hash(settings: dict[str, str], stored: str) -> None:
    stores = MemoryStores()
    service = container(stores, FakeClock(1_795_348_800_000), **settings)
    answer = service.erase_user(USER)
    assert answer.user_id == USER  # the caller's own id, echoed
    [recorded] = stores.erasures.items.values()
    assert (recorded.stored_user_id, recorded.user_key) == (stored, hashlib.sha256(stored.encode()).hexdigest())
    assert (recorded.erasure_id, recorded.status, recorded.requested_at) == (
        answer.erasure_id,
        "pending",
        1_795_348_800_000,
    )


def test_erasure_ids_are_time_ordered_and_unique() -> None:
    clock = FakeClock(1_795_348_800_000)
    service = container(MemoryStores(), clock)
    ids = []
    for user in ("u-1", "u-2", "u-3"):
        ids.append(service.erase_user(user).erasure_id)
        clock.advance(1)
    assert all(re.fullmatch(r"e-\d{13}-[0-9a-f]{12}", erasure_id) for erasure_id in ids)
    assert ids[0].startswith("e-1795348800000-")
    assert sorted(ids) == ids
    assert len(set(ids)) == 3


def test_the_view_has_no_field_for_the_user() -> None:
    stores = MemoryStores()
    service = container(stores, FakeClock(1_795_348_800_000))
    view = service.erasure(service.erase_user(USER).erasure_id)
    assert USER not in view.model_dump_json()
    assert not {name for name in ErasureView.model_fields if "user" in name}
    with pytest.raises(ErasureNotFound):
        service.erasure("e-1795348800000-0123456789ab")


def test_the_guard_refuses_only_the_user_being_erased_and_only_while_the_erasure_runs() -> None:
    stores = MemoryStores()
    clock = FakeClock(1_795_348_800_000)
    service = container(stores, clock, user_id_hashing="hmac", user_id_hmac_key=KEY)
    erasure_id = service.erase_user(USER).erasure_id
    service.register(new_session(user_id=USER))  # pending: not begun
    stores.erasures.begin(erasure_id, clock())
    clock.advance(CACHE_MS)  # what the container read before has expired
    with pytest.raises(UserBeingErased):
        service.register(new_session(user_id=USER))
    service.register(new_session(user_id="bob"))
    service.register(new_session(user_id=None))
    stores.erasures.close(erasure_id, "done", clock())
    clock.advance(CACHE_MS)
    service.register(new_session(user_id=USER))  # erasure is not a ban
