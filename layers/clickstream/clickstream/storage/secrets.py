"""The key user ids are pseudonymised with (contract 17): the stack's secret, read once per container.

Secrets Manager calls: GetSecretValue on the secret USER_ID_HMAC_SECRET_ARN names (template.yaml grants
exactly that one to the Collection and ErasureRequest functions).
"""

from __future__ import annotations

import threading
from typing import Any

import boto3

from clickstream.domain.ports import KeySource
from clickstream.domain.pseudonyms import FixedKey
from clickstream.settings import Settings
from clickstream.storage.plumbing import service_config


class SecretKey:
    """The secret's string as the key, fetched on first use and kept: the key never changes under a stack
    (changing it would give every user a new pseudonym, so the template sets no rotation)."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        if self._key is None:
            with self._lock:  # the local server runs a handler on many threads: one fetch
                if self._key is None:
                    secret = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"]
                    self._key = str(secret).encode("utf-8")
        return self._key


def key_from_settings(settings: Settings) -> KeySource | None:
    """The pseudonymisation key the settings name; None when user ids are stored as sent."""
    if settings.user_id_hashing == "none":
        return None
    if settings.user_id_hmac_secret_arn:
        client = boto3.session.Session().client("secretsmanager", config=service_config(settings))
        return SecretKey(client, settings.user_id_hmac_secret_arn)
    return FixedKey(settings.user_id_hmac_key.encode("utf-8"))
