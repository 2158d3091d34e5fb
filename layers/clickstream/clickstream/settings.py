"""Runtime configuration, parsed once per container from the environment."""

from __future__ import annotations

import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

HOUR_MS = 3_600_000
MINUTE_MS = 60_000


class Settings(BaseModel):
    """Every knob of the service; environment variable names are the upper-cased field names."""

    model_config = ConfigDict(frozen=True)

    sessions_table: str = Field(min_length=3)
    session_ids_table: str = Field(min_length=3)
    events_table: str = Field(min_length=3)
    batches_table: str = Field(min_length=3)
    tasks_table: str = Field(min_length=3)
    user_datasets_table: str = Field(min_length=3)

    # Client timestamps must lie in [now - past, now + future].
    timestamp_past_ms: int = Field(default=12 * HOUR_MS, ge=0)
    timestamp_future_ms: int = Field(default=5 * MINUTE_MS, ge=0)

    # Partition keys a new batch spreads its sessions over (contract 8.1); fixed per batch when it opens.
    batch_shards: int = Field(default=8, ge=1, le=64)
    # A container takes session numbers a block at a time: at most this many, kept at most this long.
    number_block_max: int = Field(default=64, ge=1, le=1000)
    number_block_ms: int = Field(default=2_000, ge=0)

    # Where datasets go (contract 7.2): the stack's bucket in AWS; locally, a folder (LAKE_BUCKET empty).
    lake_bucket: str = ""
    lake_dir: str = ".lake"
    # Session numbers a part of an export covers: one worker's share, and the memory it holds.
    export_range_sessions: int = Field(default=20_000, ge=1, le=1_000_000)
    # Days a released batch's items stay in DynamoDB after its dataset is exported; 0 keeps them.
    retention_days: int = Field(default=0, ge=0)
    # Late writes (contract 13.5): how long a container trusts what it read of a batch that may still change
    # (collecting, released, not fenced or exported yet); and how long the export waits after fencing a batch
    # before reading it, and after recording its dataset before setting its items' expiry. The wait must
    # exceed the cache plus the longest call (the API functions' 29 s timeout): docs/protocol.md says why.
    batch_state_cache_ms: int = Field(default=10_000, ge=0)
    write_settle_ms: int = Field(default=60_000, ge=0)
    # The EventBridge bus that receives BatchReleased and BatchExported.
    event_bus_name: str = "default"
    # The SQS queue each pending improvement task is delivered to (contract 9).
    tasks_queue_url: str = ""

    # How long a registration may hold its claim on a session_id before a retry takes over.
    registration_lease_ms: int = Field(default=3_000, ge=100)
    # How long a release waits for numbers already handed out to be written before tombstoning them.
    release_settle_grace_ms: int = Field(default=500, ge=0)
    # How long a registration waits on a sealed batch before it completes the release's hand-over itself.
    sealed_batch_wait_ms: int = Field(default=1_000, ge=0)

    # Attempts per DynamoDB call (botocore "standard" retry mode) before a throttle becomes a 503.
    dynamodb_max_attempts: int = Field(default=5, ge=1, le=20)
    # Concurrent DynamoDB requests one invocation may issue (a page's shards and events, a release's
    # tombstones): 64 reads the events of a page of 64 sessions in one wave.
    dynamodb_max_concurrency: int = Field(default=64, ge=1, le=256)

    # Pseudonymous user ids (contract 17): with "hmac", every user_id is replaced by its HMAC-SHA256 before
    # it is stored. The key is the stack's secret (USER_ID_HMAC_SECRET_ARN, in AWS); USER_ID_HMAC_KEY gives
    # it directly and is for local runs and tests only, never a real secret.
    user_id_hashing: Literal["none", "hmac"] = "none"
    user_id_hmac_secret_arn: str = ""
    user_id_hmac_key: str = ""
    # The erasure state machine the outbox starts for each erasure requested (contract 17); empty locally,
    # where local/automation.py runs the erasure's steps itself.
    erasure_state_machine_arn: str = ""
    # How long an erasure may take (template parameter ErasureDeadlineHours, the machine's timeout): an erasure
    # waiting for an export gives up, as failed, an hour before it.
    erasure_deadline_hours: int = Field(default=48, ge=2)

    @model_validator(mode="after")
    def _settle_outlasts_the_cache(self) -> Settings:
        if self.write_settle_ms < self.batch_state_cache_ms:
            raise ValueError("write_settle_ms must be at least batch_state_cache_ms (and the longest call)")
        return self

    @model_validator(mode="after")
    def _hmac_has_a_key(self) -> Settings:
        if self.user_id_hashing == "hmac" and not (self.user_id_hmac_secret_arn or self.user_id_hmac_key):
            raise ValueError("USER_ID_HASHING=hmac needs USER_ID_HMAC_SECRET_ARN (or, locally, USER_ID_HMAC_KEY)")
        return self

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        values = {name: source[name.upper()] for name in cls.model_fields if name.upper() in source}
        return cls.model_validate(values)


@cache
def get_settings() -> Settings:
    """The container's settings; tests that change the environment call `get_settings.cache_clear()`."""
    return Settings.from_environment()
