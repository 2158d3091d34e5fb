"""The client: one method per route of the API, iterators that page for the caller."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, urlencode

import requests
from requests.adapters import HTTPAdapter

from .auth import IamAuth, botocore_session, load_credentials, resolve_region
from .errors import ClickstreamError, ConnectionFailed, WaitTimedOut, error_for_response
from .retries import CONNECTION_REPR, RetryPolicy

JSONObject = dict[str, Any]


# Connections kept open per host: enough for the CLI's concurrent scheduling without churn.
CONNECTION_POOL_SIZE = 32
# An erasure takes minutes in AWS (two settle waits, then the datasets), seconds locally.
DEFAULT_POLL_SECONDS = 5.0
FINAL_ERASURE_STATUSES = frozenset({"done", "failed"})


class Client:
    """A client of the clickstream API.

    ``base_url`` is the API's root, e.g. ``https://abc123.execute-api.eu-west-1.amazonaws.com`` or
    ``http://127.0.0.1:3000``. With ``iam=True`` every request is signed with SigV4 (service
    ``execute-api``) using the standard AWS credential chain of ``profile``; the region is ``region``,
    else the one in an execute-api URL, else the profile's. 429, 503 and connection failures are retried
    up to ``max_retries`` times, honouring ``Retry-After``; ``timeout`` (seconds) bounds each attempt.
    ``sleep`` is how the client waits between retries and polls (replaceable, e.g. in tests); ``on_retry``, if given,
    is told of each retry before it is made (a line such as "Connection refused: attempt 3 of 6 in 1.0 s").

    Every method returns the API's parsed JSON, or raises a :class:`ClickstreamError` subclass.
    The client can be shared by threads; close it (or use it as a context manager) when done.
    """

    def __init__(
        self,
        base_url: str,
        *,
        iam: bool = False,
        region: str | None = None,
        profile: str | None = None,
        timeout: float = 30,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, not {base_url!r}")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.region: str | None = None
        self._sleep = sleep
        self._auth: IamAuth | None = None
        if iam:
            session = botocore_session(profile)
            self.region = resolve_region(self.base_url, region, session)
            self._auth = IamAuth(load_credentials(session), self.region)
        self._http = requests.Session()
        adapter = HTTPAdapter(
            max_retries=RetryPolicy.for_api(max_retries, sleep=sleep, on_retry=on_retry),
            pool_maxsize=CONNECTION_POOL_SIZE,
        )
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)

    # Collection API

    def register_session(self, **fields: Any) -> JSONObject:
        """Register a search session: ``session_id``, ``search_query``, ``search_results`` and the optional
        fields of ``POST /session``. Registering the same ``session_id`` again returns the first answer."""
        return self._request("POST", "/session", body=fields)

    def add_events(self, session_id: str, events: Iterable[Mapping[str, Any]]) -> JSONObject:
        """Add 1..1000 events (``event_id``, ``object_id``, ...) to a session; already stored ids are ignored."""
        return self._request("POST", "/session/events", body={"session_id": session_id, "events": list(events)})

    def mark_irrelevant(self, session_id: str) -> JSONObject:
        """Mark a session's results as irrelevant to its query."""
        return self._request("POST", "/session/irrelevant", body={"session_id": session_id})

    def get_session(self, session_id: str, events_limit: int = 1000) -> JSONObject:
        """One session with its batch and its first ``events_limit`` events."""
        return self._request("GET", "/session", query={"session_id": session_id, "events_limit": events_limit})

    # Improvement

    def use_for_improvement(self, session_id: str) -> JSONObject:
        """Schedule a session for model improvement: ``{"status": "scheduled", "task"}`` or
        ``{"status": "skipped", "reason"}``."""
        return self._request("POST", "/session/use-for-improvement", body={"session_id": session_id})

    def complete_task(
        self,
        session_id: str,
        status: Literal["done", "failed"],
        error: str | None = None,
        *,
        requested_at: int | None = None,
    ) -> JSONObject:
        """Report a session's improvement task as ``done`` or ``failed`` (with ``error``, at most 1,000
        characters). Pass the delivered task's ``requested_at`` to complete that task only: a late duplicate
        of an older delivery then gets a 409 instead of completing a task scheduled since."""
        body: JSONObject = {"session_id": session_id, "status": status}
        if error is not None:
            body["error"] = error
        if requested_at is not None:
            body["requested_at"] = requested_at
        return self._request("POST", "/improvement/tasks/complete", body=body)

    def iter_tasks(self, status: str = "pending", *, page_size: int = 100) -> Iterator[JSONObject]:
        """Every improvement task with ``status``, oldest first, fetched ``page_size`` at a time."""
        return self._follow_next("/improvement/tasks", {"status": status, "limit": page_size}, "tasks", "after")

    # Batches

    def release(self, release_id: str) -> JSONObject:
        """Release the collecting batch; the same ``release_id`` again returns the same answer."""
        return self._request("POST", "/batch/release", body={"release_id": release_id})

    def get_batch(self, batch_id: str) -> JSONObject:
        """A batch's status, release, dataset and quality metrics."""
        return self._request("GET", "/batch", query={"batch_id": batch_id})

    def get_experiment(self, experiment_id: str) -> JSONObject:
        """An experiment over every exported batch that has it: per variant CTR and MRR with 95 % intervals,
        each variant against the baseline, the sample-ratio check, interleaving credit, and its ``batches``."""
        return self._request("GET", "/experiment", query={"experiment_id": experiment_id})

    def get_report(self, batch_id: str) -> str:
        """The exported batch's report page (HTML text: self-contained, open it in any browser); NotFound
        until the batch has an exported dataset."""
        return self._send("GET", "/batch/report", query={"batch_id": batch_id}, accept="text/html").text

    def list_batches(self, *, page_size: int = 20) -> Iterator[JSONObject]:
        """Every batch, newest first (the collecting one, if any, first), fetched ``page_size`` at a time."""
        return self._follow_next("/batches", {"limit": page_size}, "batches", "before")

    def iter_sessions(
        self, batch_id: str, *, after_number: int = 0, page_size: int = 100, events_limit: int = 100
    ) -> Iterator[JSONObject]:
        """Every session of a batch numbered above ``after_number``, ascending, each exactly once, with its
        first ``events_limit`` events; fetched up to ``page_size`` at a time."""
        while True:
            page = self._request(
                "GET",
                "/batch/sessions",
                query={
                    "batch_id": batch_id,
                    "after_number": after_number,
                    "limit": page_size,
                    "events_limit": events_limit,
                },
            )
            yield from page["sessions"]
            if not page["has_more"]:
                return
            if page["last_number"] is None:
                # Asking again from the same place would loop for ever.
                raise ClickstreamError("the API reported more sessions but returned none", status=200, body=page)
            after_number = page["last_number"]

    # Erasure

    def erase_user(self, user_id: str) -> JSONObject:
        """Ask for everything the service keeps of a user to be erased, datasets included (202):
        ``{"erasure_id", "user_id", "status": "pending", "requested_at"}``. Asking again while that user's
        erasure is pending or running returns that erasure, with its current status."""
        return self._request("POST", "/user/erase", body={"user_id": user_id})

    def get_erasure(self, erasure_id: str) -> JSONObject:
        """An erasure's status (pending, running, done or failed), its times and what it erased so far:
        ``sessions``, ``events``, ``tasks``, ``datasets_rewritten``, and ``error`` when it failed."""
        return self._request("GET", "/erasure", query={"erasure_id": erasure_id})

    def wait_for_erasure(
        self,
        erasure_id: str,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        timeout: float | None = None,
        on_progress: Callable[[JSONObject], None] | None = None,
    ) -> JSONObject:
        """Polls ``GET /erasure`` every ``poll_seconds`` until the erasure is done or failed, and returns it
        (check its ``status``). ``on_progress``, if given, is told of every record read, the last included.
        Raises :class:`WaitTimedOut` (its ``body`` the last record) when ``timeout`` seconds pass first."""
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be > 0")
        started = time.monotonic()
        while True:
            erasure = self.get_erasure(erasure_id)
            if on_progress is not None:
                on_progress(erasure)
            if erasure.get("status") in FINAL_ERASURE_STATUSES:
                return erasure
            if timeout is not None and time.monotonic() - started + poll_seconds > timeout:
                raise WaitTimedOut(
                    f"erasure {erasure_id} is still {erasure.get('status')} after {timeout:g} s", body=erasure
                )
            self._sleep(poll_seconds)

    # Plumbing

    def _follow_next(self, path: str, query: dict[str, str | int], items: str, cursor: str) -> Iterator[JSONObject]:
        """The `items` of every page of a route that answers a `next` cursor, passed back as `cursor`."""
        while True:
            page = self._request("GET", path, query=query)
            yield from page[items]
            if page.get("next") is None:
                return
            query = {**query, cursor: page["next"]}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, iam={self._auth is not None}, region={self.region!r})"

    def _request(
        self, method: str, path: str, *, query: Mapping[str, str | int] | None = None, body: Any = None
    ) -> JSONObject:
        response = self._send(method, path, query=query, body=body)
        try:
            parsed: Any = response.json()
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ClickstreamError(
                f"expected a JSON object from {method} {path}, got: {response.text[:200]!r}",
                status=response.status_code,
            )
        return parsed

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        accept: str = "application/json",
    ) -> requests.Response:
        """The response of a successful call; an error answer raised as its ClickstreamError."""
        url = self.base_url + path
        if query:
            # RFC 3986 encoding (%20, not +): the form SigV4 signs and API Gateway checks.
            url += "?" + urlencode(query, quote_via=quote)
        headers = {"Accept": accept}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                method, url, data=data, headers=headers, auth=self._auth, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise ConnectionFailed(
                f"cannot reach {self.base_url}: {_reason(error)} (after {1 + self.max_retries} attempts)"
            ) from error
        if response.status_code >= 400:
            try:
                parsed: Any = response.json()
            except ValueError:
                parsed = None
            raise error_for_response(response.status_code, parsed, response.text, attempts=1 + self.max_retries)
        return response


def _reason(error: requests.RequestException) -> str:
    """The innermost cause of a requests failure, without the wrapper layers' repetition."""
    if isinstance(error, requests.Timeout):
        return "timed out"
    cause: BaseException = error
    for _ in range(5):  # requests' error wraps urllib3's MaxRetryError, which wraps the socket's
        inner = getattr(cause, "reason", None) or (cause.args[0] if cause.args else None)
        if not isinstance(inner, BaseException):
            break
        cause = inner
    return CONNECTION_REPR.sub("", str(cause))
