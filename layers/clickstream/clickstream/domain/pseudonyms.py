"""Pseudonymous user ids (contract 17) and the key a user's sessions are found by.

With USER_ID_HASHING=hmac a `user_id` is replaced at the door, before it is stored or logged, by
"hmac-sha256:" and the 64 hex digits of its HMAC-SHA256 under the stack's key. The same id under the same
key always gives the same pseudonym, so an erasure given the raw id finds what was stored under it; without
the key a pseudonym cannot be traced back to the id, nor recomputed from a guessed one.

Every claim of a session with a user_id carries `user_key`, the SHA-256 (hex) of the user_id as stored
(the pseudonym when hmac is on): the sparse index of the session ids table is keyed by it, so finding a
user's sessions reads that index, never scans a table, and the index holds no raw id.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from clickstream.models import NewSession

if TYPE_CHECKING:
    from clickstream.domain.ports import KeySource

PSEUDONYM_PREFIX = "hmac-sha256:"


def user_key(stored_user_id: str) -> str:
    """The key a user's sessions are indexed by: SHA-256 of the user_id as stored."""
    return hashlib.sha256(stored_user_id.encode("utf-8")).hexdigest()


class FixedKey:
    """A key given in the settings (USER_ID_HMAC_KEY): local runs and tests only."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def key(self) -> bytes:
        return self._key


class UserIds:
    """How user ids are stored: as sent (no key), or as their HMAC-SHA256 pseudonym under `key`."""

    def __init__(self, key: KeySource | None = None) -> None:
        self._key = key

    @property
    def hashed(self) -> bool:
        return self._key is not None

    def stored(self, user_id: str) -> str:
        """The user_id as this service stores it (and as an erasure must look it up)."""
        if self._key is None:
            return user_id
        digest = hmac.new(self._key.key(), user_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest

    def at_the_door(self, new: NewSession) -> NewSession:
        """The session body with its user_id as stored: the raw id goes no further than this."""
        if self._key is None or new.user_id is None:
            return new
        return new.model_copy(update={"user_id": self.stored(new.user_id)})

    def key_of(self, user_id: str) -> str:
        """The index key of a user's sessions, from the raw user_id."""
        return user_key(self.stored(user_id))
