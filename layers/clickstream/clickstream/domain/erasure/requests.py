"""Erasure requests (contract 17.3) and the guard registration asks before it claims anything.

`POST /user/erase` takes the raw user id, turns it into the id as stored (`UserIds.stored`: the hmac
pseudonym with UserIdHashing=hmac) and its `user_key`, and records a pending erasure, or returns the open one
of that user (storage keeps one per user). The record's INSERT starts the erasure (the outbox). `GET
/erasure` shows its progress, never the user id, which the record drops once the erasure is closed.

The guard: while an erasure runs, its user_key is in the active set; a registration with that key is
refused (409). A container trusts the set it read for BATCH_STATE_CACHE_MS (domain/remembered.py, as the
write paths trust a batch's state), so the guard costs one read per container per interval, and a
registration without a user_id none. A registration that read the set before the erasure began is stored
within WRITE_SETTLE_MS; the erasure waits that long before it looks for the user's sessions.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict

from clickstream.domain.context import Context
from clickstream.domain.pseudonyms import user_key
from clickstream.domain.remembered import Remembered
from clickstream.erasure_models import ErasureRequested, ErasureView
from clickstream.errors import ErasureNotFound, UserBeingErased
from clickstream.records import Erasure

_ACTIVE = "active"  # the one key of the guard's cache: the set is one item


def new_erasure_id(now: int) -> str:
    # Time-ordered, like batch ids: erasures sort by when they were asked for.
    return f"e-{now:013d}-{uuid.uuid4().hex[:12]}"


def erasure_view(erasure: Erasure) -> ErasureView:
    """What the route shows of the record: its fields by name, so neither user_key nor stored_user_id."""
    record = asdict(erasure)
    return ErasureView.model_validate({name: record[name] for name in ErasureView.model_fields})


class ErasureRequests:
    def __init__(self, context: Context) -> None:
        self._erasures = context.storage.erasures
        self._user_ids = context.user_ids
        self._clock = context.clock
        self._telemetry = context.telemetry

    def request(self, user_id: str, requested_by: str | None = None) -> ErasureRequested:
        """A pending erasure of the user, or the one already pending or running for them (with its first
        requester). `requested_by` is the caller who asks (an IAM ARN), kept on the record."""
        stored = self._user_ids.stored(user_id)
        now = self._clock()
        asked = Erasure(
            new_erasure_id(now), user_key(stored), "pending", now, stored_user_id=stored, requested_by=requested_by
        )
        standing = self._erasures.request(asked)
        if standing.erasure_id == asked.erasure_id:
            self._telemetry.count("ErasuresRequested")
        shown = {"erasure_id": standing.erasure_id, "status": standing.status, "requested_at": standing.requested_at}
        return ErasureRequested.model_validate({**shown, "user_id": user_id})  # the caller's id, echoed

    def get(self, erasure_id: str) -> ErasureView:
        erasure = self._erasures.get(erasure_id)
        if erasure is None:
            raise ErasureNotFound(erasure_id)
        return erasure_view(erasure)


class ErasureGuard:
    """Registration's check: refuse a user being erased, from the active set as this container knows it."""

    def __init__(self, context: Context) -> None:
        self._erasures = context.storage.erasures
        self._telemetry = context.telemetry
        self._active: Remembered[str, frozenset[str]] = Remembered(
            context.clock, context.settings.batch_state_cache_ms, capacity=1
        )

    def check(self, stored_user_id: str | None) -> None:
        """UserBeingErased when an erasure of this user (the id as stored) is running."""
        if stored_user_id is None:
            return  # no user, nothing to erase by user: the set is not read
        if user_key(stored_user_id) in self._active.get(_ACTIVE, self._erasures.active_user_keys):
            self._telemetry.count("RegistrationsRefusedByErasure")
            raise UserBeingErased
