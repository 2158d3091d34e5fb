"""Every DynamoDB call of the service. Nothing above this module imports boto3.

Only single-item conditional writes are used, so the service runs on DynamoDB-compatible stores
without transactions. DynamoDB errors become domain errors here: a failed condition is a return
value, throttling that outlived the retries is `StorageUnavailable`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from clickstream.errors import StorageUnavailable
from clickstream.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")

POINTER_KEY = "pointer"
EVENTS_BY_TIME_INDEX = "by_created_at"

_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
_CONDITION_FAILED = "ConditionalCheckFailedException"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _opt_s(item: Item, name: str) -> str | None:
    attribute = item.get(name)
    return attribute["S"] if attribute else None


def _opt_n(item: Item, name: str) -> int | None:
    attribute = item.get(name)
    return int(attribute["N"]) if attribute else None


def chronological_key(created_at: int, event_id: str) -> str:
    """Sort key of the events-by-time index: orders by created_at, then event_id (UTF-8 byte order)."""
    return f"{created_at:013d}#{event_id}"


@dataclass(frozen=True)
class SessionIdRecord:
    """The claim of a session_id: who is registering it, and where it lives once numbered."""

    session_id: str
    state: str  # "claimed" -> "assigned" (slot chosen) -> "registered" (session written)
    claim_token: str
    claimed_at: int
    batch_id: str | None
    session_number: int | None


@dataclass(frozen=True)
class Pointer:
    """The collecting pointer: the open batch and the last number handed out in it."""

    batch_id: str
    counter: int
    opened_at: int
    release_id: str | None
    sealed_at: int | None


@dataclass(frozen=True)
class ReleaseRecord:
    release_id: str
    batch_id: str
    released_at: int
    last_number: int
    session_count: int | None  # None until the batch is settled


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    release_id: str
    released_at: int
    last_number: int
    session_count: int | None


@dataclass(frozen=True)
class StoredSession:
    """A session item. `document` is the JSON object text of the search itself, stored verbatim."""

    batch_id: str
    session_number: int
    session_id: str
    created_at: int
    user_id: str | None
    is_irrelevant: bool
    is_payload_search: bool
    document: str


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    object_id: str
    event_type: str
    created_at: int
    meta: str | None  # JSON object text


@dataclass(frozen=True)
class Slot:
    """What occupies a (batch_id, session_number): a session, or a tombstone left by a release."""

    session_number: int
    session_id: str | None

    @property
    def is_tombstone(self) -> bool:
        return self.session_id is None


@dataclass(frozen=True)
class StoredTask:
    session_id: str
    batch_id: str
    session_number: int
    status: str
    requested_at: int


class PointerUnavailable(Exception):
    """The collecting pointer is missing (`pointer` is None) or sealed by a release."""

    def __init__(self, pointer: Pointer | None) -> None:
        super().__init__("collecting pointer unavailable")
        self.pointer = pointer


class Storage:
    """The service's tables. One instance per container; safe to share between threads."""

    def __init__(
        self,
        client: DynamoDBClient,
        *,
        sessions_table: str,
        session_ids_table: str,
        events_table: str,
        batches_table: str,
        tasks_table: str,
        max_concurrency: int,
    ) -> None:
        self._client = client
        self._sessions = sessions_table
        self._session_ids = session_ids_table
        self._events = events_table
        self._batches = batches_table
        self._tasks = tasks_table
        self._max_concurrency = max_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        # AWS_ENDPOINT_URL_DYNAMODB, when set, is honoured by botocore itself.
        # total_max_attempts counts the first attempt too (botocore's max_attempts counts only retries).
        config = Config(
            retries={"mode": "standard", "total_max_attempts": settings.dynamodb_max_attempts},
            max_pool_connections=settings.dynamodb_max_concurrency + 4,
            connect_timeout=3,
            read_timeout=10,
            # Requests are built here, not from input; DynamoDB validates them anyway. Skipping botocore's
            # client-side check saves ~10% of the client CPU per request (bench/RESULTS.md, paging).
            parameter_validation=False,
        )
        client = boto3.session.Session().client("dynamodb", config=config)
        return cls(
            client,
            sessions_table=settings.sessions_table,
            session_ids_table=settings.session_ids_table,
            events_table=settings.events_table,
            batches_table=settings.batches_table,
            tasks_table=settings.tasks_table,
            max_concurrency=settings.dynamodb_max_concurrency,
        )

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client (for instrumentation: benchmarks and request-count tests hook its events)."""
        return self._client

    # --- plumbing -------------------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _UNAVAILABLE_CODES:
                raise StorageUnavailable() from error
            raise
        except (ConnectionError, ReadTimeoutError) as error:
            raise StorageUnavailable() from error
        return response

    def _conditional(self, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """Run a conditional write; None when its condition did not hold."""
        try:
            return self._call(operation, **kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return None
            raise

    def _put_new(self, table: str, item: Item, key_attribute: str) -> bool:
        """Put `item` unless an item with its key exists; False when one does."""
        condition = f"attribute_not_exists({key_attribute})"
        return self._conditional("put_item", TableName=table, Item=item, ConditionExpression=condition) is not None

    def _query_items(self, request: dict[str, Any], total: int | None = None) -> Iterator[Item]:
        """The items a Query matches, one page at a time as the caller consumes them.

        With `total`, at most that many: each page asks only for what is still wanted, so a page cut short
        at 1 MB never makes the next one read past `total`.
        """
        request = dict(request)
        taken = 0
        while total is None or taken < total:
            if total is not None:
                request["Limit"] = total - taken
            response = self._call("query", **request)
            items: list[Item] = response.get("Items", [])
            taken += len(items)
            yield from items
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = last_key

    def _get(self, table: str, key: Item) -> Item | None:
        item: Item | None = self._call("get_item", TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item

    def map_concurrently(self, function: Callable[[T], R], values: Iterable[T]) -> list[R]:
        """`function` over `values` with up to `max_concurrency` requests in flight, results in order."""
        items = list(values)
        if len(items) <= 1:
            return [function(value) for value in items]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_concurrency, thread_name_prefix="dynamodb")
        return list(self._pool.map(function, items))

    # --- session ids ------------------------------------------------------------------------

    def claim_session_id(self, session_id: str, token: str, now: int) -> bool:
        item = {"session_id": _s(session_id), "state": _s("claimed"), "claim_token": _s(token), "claimed_at": _n(now)}
        return self._put_new(self._session_ids, item, "session_id")

    def get_session_id(self, session_id: str) -> SessionIdRecord | None:
        item = self._get(self._session_ids, {"session_id": _s(session_id)})
        return None if item is None else self._session_id_record(item)

    @staticmethod
    def _session_id_record(item: Item) -> SessionIdRecord:
        return SessionIdRecord(
            session_id=item["session_id"]["S"],
            state=item["state"]["S"],
            claim_token=item["claim_token"]["S"],
            claimed_at=int(item["claimed_at"]["N"]),
            batch_id=_opt_s(item, "batch_id"),
            session_number=_opt_n(item, "session_number"),
        )

    def take_over_claim(self, session_id: str, old_token: str, new_token: str, now: int) -> SessionIdRecord | None:
        """Replace a stale claim (its registration crashed or stalled) with ours.

        Returns the record as it stands after the take-over: the slot in it is the one to use, since
        the old owner can no longer assign one.
        """
        response = self._conditional(
            "update_item",
            TableName=self._session_ids,
            Key={"session_id": _s(session_id)},
            UpdateExpression="SET claim_token = :new, claimed_at = :now",
            ConditionExpression="claim_token = :old AND #state <> :registered",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":new": _s(new_token),
                ":old": _s(old_token),
                ":now": _n(now),
                ":registered": _s("registered"),
            },
            ReturnValues="ALL_NEW",
        )
        return None if response is None else self._session_id_record(response["Attributes"])

    def assign_slot(self, session_id: str, token: str, batch_id: str, session_number: int) -> bool:
        """Record the slot before writing the session, so a retry finds it instead of numbering again."""
        return (
            self._conditional(
                "update_item",
                TableName=self._session_ids,
                Key={"session_id": _s(session_id)},
                UpdateExpression="SET #state = :assigned, batch_id = :batch, session_number = :number",
                ConditionExpression="claim_token = :token AND #state <> :registered",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":assigned": _s("assigned"),
                    ":batch": _s(batch_id),
                    ":number": _n(session_number),
                    ":token": _s(token),
                    ":registered": _s("registered"),
                },
            )
            is not None
        )

    def mark_registered(self, session_id: str, batch_id: str, session_number: int) -> bool:
        """Final step of a registration; repeatable, and only ever for the slot the session is in."""
        return (
            self._conditional(
                "update_item",
                TableName=self._session_ids,
                Key={"session_id": _s(session_id)},
                UpdateExpression="SET #state = :registered",
                ConditionExpression="batch_id = :batch AND session_number = :number",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":registered": _s("registered"),
                    ":batch": _s(batch_id),
                    ":number": _n(session_number),
                },
            )
            is not None
        )

    # --- the collecting pointer ---------------------------------------------------------------

    def next_number(self) -> tuple[str, int]:
        """Hand out the next session number of the collecting batch: one atomic ADD on the pointer."""
        response = self._conditional(
            "update_item",
            TableName=self._batches,
            Key={"pk": _s(POINTER_KEY)},
            UpdateExpression="ADD #counter :one",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(release_id)",
            ExpressionAttributeNames={"#counter": "counter"},
            ExpressionAttributeValues={":one": _n(1)},
            ReturnValues="ALL_NEW",
        )
        if response is None:
            raise PointerUnavailable(self.get_pointer())
        attributes = response["Attributes"]
        return attributes["batch_id"]["S"], int(attributes["counter"]["N"])

    def get_pointer(self) -> Pointer | None:
        item = self._get(self._batches, {"pk": _s(POINTER_KEY)})
        return None if item is None else self._pointer(item)

    @staticmethod
    def _pointer(item: Item) -> Pointer:
        return Pointer(
            batch_id=item["batch_id"]["S"],
            counter=int(item["counter"]["N"]),
            opened_at=int(item["opened_at"]["N"]),
            release_id=_opt_s(item, "release_id"),
            sealed_at=_opt_n(item, "sealed_at"),
        )

    def open_batch(self, batch_id: str, now: int) -> bool:
        """Create the pointer of a new collecting batch; False when another caller opened one first."""
        item = {"pk": _s(POINTER_KEY), "batch_id": _s(batch_id), "counter": _n(0), "opened_at": _n(now)}
        return self._put_new(self._batches, item, "pk")

    def seal_pointer(self, release_id: str, now: int) -> Pointer | None:
        """Seal the pointer for `release_id`, freezing its counter. None: no pointer, or sealed by another."""
        response = self._conditional(
            "update_item",
            TableName=self._batches,
            Key={"pk": _s(POINTER_KEY)},
            UpdateExpression="SET release_id = :release, sealed_at = if_not_exists(sealed_at, :now)",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(release_id) OR release_id = :release)",
            ExpressionAttributeValues={":release": _s(release_id), ":now": _n(now)},
            ReturnValues="ALL_NEW",
        )
        return None if response is None else self._pointer(response["Attributes"])

    def delete_sealed_pointer(self, release_id: str, batch_id: str) -> None:
        """Remove the sealed pointer so the next registration opens a new batch; repeatable."""
        self._conditional(
            "delete_item",
            TableName=self._batches,
            Key={"pk": _s(POINTER_KEY)},
            ConditionExpression="release_id = :release AND batch_id = :batch",
            ExpressionAttributeValues={":release": _s(release_id), ":batch": _s(batch_id)},
        )

    def unseal_pointer(self, sealed: Pointer) -> None:
        """Undo the seal seen in `sealed` (empty batch, or a release_id already bound elsewhere).

        Only that very seal: the counter cannot move while sealed, and a new seal has a new sealed_at,
        so a late unseal can never undo a later, legitimate seal of the same batch by the same release.
        """
        if sealed.release_id is None or sealed.sealed_at is None:
            return
        self._conditional(
            "update_item",
            TableName=self._batches,
            Key={"pk": _s(POINTER_KEY)},
            UpdateExpression="REMOVE release_id, sealed_at",
            ConditionExpression=(
                "release_id = :release AND batch_id = :batch AND #counter = :counter AND sealed_at = :sealed_at"
            ),
            ExpressionAttributeNames={"#counter": "counter"},
            ExpressionAttributeValues={
                ":release": _s(sealed.release_id),
                ":batch": _s(sealed.batch_id),
                ":counter": _n(sealed.counter),
                ":sealed_at": _n(sealed.sealed_at),
            },
        )

    # --- releases and batch records ------------------------------------------------------------

    def bind_release(self, release_id: str, batch_id: str, released_at: int, last_number: int) -> ReleaseRecord:
        """Attach `release_id` to `batch_id` once; returns the binding that holds (maybe an older one)."""
        item = {
            "pk": _s(f"release#{release_id}"),
            "release_id": _s(release_id),
            "batch_id": _s(batch_id),
            "released_at": _n(released_at),
            "last_number": _n(last_number),
        }
        self._put_new(self._batches, item, "pk")
        record = self.get_release(release_id)
        if record is None:  # written above or earlier, and never deleted
            raise RuntimeError(f"release {release_id} vanished after it was bound")
        return record

    def get_release(self, release_id: str) -> ReleaseRecord | None:
        item = self._get(self._batches, {"pk": _s(f"release#{release_id}")})
        if item is None:
            return None
        return ReleaseRecord(
            release_id=release_id,
            batch_id=item["batch_id"]["S"],
            released_at=int(item["released_at"]["N"]),
            last_number=int(item["last_number"]["N"]),
            session_count=_opt_n(item, "session_count"),
        )

    def put_batch_record(self, release: ReleaseRecord) -> None:
        """The released batch's record; written before the pointer goes, so the batch is always findable."""
        item = {
            "pk": _s(f"batch#{release.batch_id}"),
            "batch_id": _s(release.batch_id),
            "release_id": _s(release.release_id),
            "released_at": _n(release.released_at),
            "last_number": _n(release.last_number),
        }
        self._put_new(self._batches, item, "pk")

    def get_batch_record(self, batch_id: str) -> BatchRecord | None:
        item = self._get(self._batches, {"pk": _s(f"batch#{batch_id}")})
        if item is None:
            return None
        return BatchRecord(
            batch_id=batch_id,
            release_id=item["release_id"]["S"],
            released_at=int(item["released_at"]["N"]),
            last_number=int(item["last_number"]["N"]),
            session_count=_opt_n(item, "session_count"),
        )

    def record_session_count(self, release: ReleaseRecord, session_count: int) -> None:
        """Mark the batch settled: both records carry the final count. Repeatable."""
        for key in (f"batch#{release.batch_id}", f"release#{release.release_id}"):
            self._call(
                "update_item",
                TableName=self._batches,
                Key={"pk": _s(key)},
                UpdateExpression="SET session_count = :count",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":count": _n(session_count)},
            )

    # --- sessions --------------------------------------------------------------------------------

    def put_session(self, session: StoredSession) -> bool:
        """Write a session into its slot; False when the slot is taken (by a session or a tombstone)."""
        item: Item = {
            "batch_id": _s(session.batch_id),
            "session_number": _n(session.session_number),
            "session_id": _s(session.session_id),
            "created_at": _n(session.created_at),
            "is_irrelevant": {"BOOL": session.is_irrelevant},
            "is_payload_search": {"BOOL": session.is_payload_search},
            "document": _s(session.document),
        }
        if session.user_id is not None:
            item["user_id"] = _s(session.user_id)
        return self._put_new(self._sessions, item, "session_number")

    def put_tombstone(self, batch_id: str, session_number: int) -> bool:
        """Close a slot whose registration never wrote it; False when a session got there first."""
        item = {"batch_id": _s(batch_id), "session_number": _n(session_number), "tombstone": {"BOOL": True}}
        if self._put_new(self._sessions, item, "session_number"):
            return True
        # Taken: by a session, or by a tombstone (a concurrent settle of the same release, or this very
        # write when botocore retried an attempt whose answer was lost). Only a session counts as one.
        slot = self.get_slot(batch_id, session_number)
        return slot is not None and slot.is_tombstone

    def get_slot(self, batch_id: str, session_number: int) -> Slot | None:
        item = self._get(self._sessions, {"batch_id": _s(batch_id), "session_number": _n(session_number)})
        if item is None:
            return None
        return Slot(session_number, _opt_s(item, "session_id"))

    def get_session(self, batch_id: str, session_number: int) -> StoredSession | None:
        item = self._get(self._sessions, {"batch_id": _s(batch_id), "session_number": _n(session_number)})
        if item is None or "tombstone" in item:
            return None
        return self._session(item)

    @staticmethod
    def _session(item: Item) -> StoredSession:
        return StoredSession(
            batch_id=item["batch_id"]["S"],
            session_number=int(item["session_number"]["N"]),
            session_id=item["session_id"]["S"],
            created_at=int(item["created_at"]["N"]),
            user_id=_opt_s(item, "user_id"),
            is_irrelevant=item["is_irrelevant"]["BOOL"],
            is_payload_search=item["is_payload_search"]["BOOL"],
            document=item["document"]["S"],
        )

    def set_irrelevant(self, batch_id: str, session_number: int) -> bool:
        return (
            self._conditional(
                "update_item",
                TableName=self._sessions,
                Key={"batch_id": _s(batch_id), "session_number": _n(session_number)},
                UpdateExpression="SET is_irrelevant = :true",
                ConditionExpression="attribute_exists(session_id)",
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
            is not None
        )

    def sessions_after(self, batch_id: str, after_number: int, page_size: int) -> Iterator[StoredSession]:
        """Sessions of a batch with number > `after_number`, ascending; tombstones skipped.

        Reads lazily, `page_size` items per Query, so a caller that stops early reads no further.
        """
        request: dict[str, Any] = {
            "TableName": self._sessions,
            "KeyConditionExpression": "batch_id = :batch AND session_number > :after",
            "ExpressionAttributeValues": {":batch": _s(batch_id), ":after": _n(after_number)},
            "Limit": page_size,
            "ConsistentRead": True,
        }
        for item in self._query_items(request):
            if "tombstone" not in item:
                yield self._session(item)

    def slots(self, batch_id: str) -> Iterator[Slot]:
        """Every written slot of a batch (sessions and tombstones), keys only."""
        request: dict[str, Any] = {
            "TableName": self._sessions,
            "KeyConditionExpression": "batch_id = :batch",
            "ExpressionAttributeValues": {":batch": _s(batch_id)},
            "ProjectionExpression": "session_number, session_id",
            "ConsistentRead": True,
        }
        for item in self._query_items(request):
            yield Slot(int(item["session_number"]["N"]), _opt_s(item, "session_id"))

    # --- events ------------------------------------------------------------------------------------

    def put_event(self, session_id: str, event: StoredEvent) -> bool:
        """Store an event once; False when its event_id is already stored for the session."""
        item: Item = {
            "session_id": _s(session_id),
            "event_id": _s(event.event_id),
            "chrono": _s(chronological_key(event.created_at, event.event_id)),
            "object_id": _s(event.object_id),
            "event_type": _s(event.event_type),
            "created_at": _n(event.created_at),
        }
        if event.meta is not None:
            item["meta"] = _s(event.meta)
        return self._put_new(self._events, item, "event_id")

    def first_events(self, session_id: str, limit: int) -> list[StoredEvent]:
        """The first `limit` events of a session in time order; reads no further than that."""
        request: dict[str, Any] = {
            "TableName": self._events,
            "IndexName": EVENTS_BY_TIME_INDEX,
            "KeyConditionExpression": "session_id = :session",
            "ExpressionAttributeValues": {":session": _s(session_id)},
            "ConsistentRead": True,
        }
        return [
            StoredEvent(
                event_id=item["event_id"]["S"],
                object_id=item["object_id"]["S"],
                event_type=item["event_type"]["S"],
                created_at=int(item["created_at"]["N"]),
                meta=_opt_s(item, "meta"),
            )
            for item in self._query_items(request, total=max(limit, 0))
        ]

    def has_events(self, session_id: str) -> bool:
        response = self._call(
            "query",
            TableName=self._events,
            KeyConditionExpression="session_id = :session",
            ExpressionAttributeValues={":session": _s(session_id)},
            ProjectionExpression="event_id",
            Limit=1,
            ConsistentRead=True,
        )
        return bool(response.get("Items"))

    # --- improvement tasks -------------------------------------------------------------------------

    def put_pending_task(self, task: StoredTask) -> bool:
        """Store a pending task unless one is already pending for the session."""
        item = {
            "session_id": _s(task.session_id),
            "batch_id": _s(task.batch_id),
            "session_number": _n(task.session_number),
            "status": _s(task.status),
            "requested_at": _n(task.requested_at),
        }
        return (
            self._conditional(
                "put_item",
                TableName=self._tasks,
                Item=item,
                ConditionExpression="attribute_not_exists(session_id) OR #status <> :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":pending": _s("pending")},
            )
            is not None
        )

    def get_task(self, session_id: str) -> StoredTask | None:
        item = self._get(self._tasks, {"session_id": _s(session_id)})
        if item is None:
            return None
        return StoredTask(
            session_id=session_id,
            batch_id=item["batch_id"]["S"],
            session_number=int(item["session_number"]["N"]),
            status=item["status"]["S"],
            requested_at=int(item["requested_at"]["N"]),
        )
