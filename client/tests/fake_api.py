"""An in-memory stand-in for the clickstream API, served over real HTTP by werkzeug for the client's tests.

It answers the routes the client calls with the documented shapes (paging, 404s, 422 bodies), checks
SigV4 like API Gateway's AWS_IAM authoriser when given credentials, records every request, and can be
told to answer the next requests to a path with a scripted status (503 with Retry-After, ...).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from local.sigv4 import is_signed_by
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from fake_erasures import Erasures, UserData, valid_user_id

IAM_REGION = "us-east-1"

JSONObject = dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, body: JSONObject, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def not_found(message: str) -> ApiError:
    return ApiError(404, {"message": message})


def invalid(field_name: str, message: str) -> ApiError:
    return ApiError(
        422,
        {"message": "Invalid request", "errors": [{"field": field_name, "message": message, "type": "value_error"}]},
    )


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    status: int = 0


@dataclass
class ScriptedResponse:
    status: int
    body: JSONObject | str  # a str is sent as it is, as text
    headers: dict[str, str]


@dataclass
class Batch:
    batch_id: str
    opened_at: int
    session_ids: list[str] = field(default_factory=list)
    release_id: str | None = None
    released_at: int | None = None
    dataset: JSONObject | None = None  # set by `exported`
    erased_sessions: int = 0  # sessions an erasure removed: their numbers stay gaps

    @property
    def numbers_used(self) -> int:
        return len(self.session_ids) + self.erased_sessions

    def view(self) -> JSONObject:
        released = self.release_id is not None
        return {
            "batch_id": self.batch_id,
            "status": "released" if released else "collecting",
            "opened_at": self.opened_at,
            "release_id": self.release_id,
            "released_at": self.released_at,
            "session_count": len(self.session_ids) if released else None,
            "erased_sessions": self.erased_sessions,
            "dataset": self.dataset,
            "metrics": None,
            "click_model": None,
        }


class FakeApi:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.scripted: dict[str, list[ScriptedResponse]] = {}
        self.report_pages: dict[str, str] = {}  # batch_id -> its page, once "exported"
        self.iam_credentials: tuple[str, str] | None = None
        self.clock_offset_seconds = 0.0  # how far ahead the server's clock runs, to make signatures stale
        self.sessions: dict[str, JSONObject] = {}
        self.batches: list[Batch] = []  # oldest first
        self.tasks: dict[str, JSONObject] = {}  # by session_id, in scheduling order
        self.task_sequence = 0
        self.experiments: dict[str, JSONObject] = {}  # GET /experiment answers, by id
        self.erasures = Erasures()  # set `erasures.outcome` to an error name to make erasures fail

    # Test helpers

    def require_iam(self, access_key: str, secret_key: str) -> None:
        self.iam_credentials = (access_key, secret_key)

    def script(
        self,
        path: str,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        body: JSONObject | str | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status`` instead of handling them."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        response = ScriptedResponse(status, {"message": f"Scripted {status}"} if body is None else body, headers)
        self.scripted.setdefault(path, []).extend([response] * times)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]

    def add_batch(self, session_count: int, *, release_id: str | None = None, events_per_session: int = 0) -> str:
        """Adds ``session_count`` sessions to the collecting batch (opening one), then releases it when
        ``release_id`` is given; returns the batch's id."""
        batch = self._collecting_batch()
        for _ in range(session_count):
            session_id = f"sess-{len(self.sessions) + 1:06d}"
            self._register({"session_id": session_id, "search_query": f"query {session_id}", "search_results": []})
            events = [{"event_id": f"e{index}", "object_id": f"o{index}"} for index in range(events_per_session)]
            if events:
                self._add_events(session_id, events)
        if release_id is not None:
            self._release(release_id)
        return batch.batch_id

    def exported(self, batch_id: str, judgments: JSONObject | None) -> None:
        """The released batch's dataset is exported, with these judgments ({uri, pairs, bytes, sha256})."""
        batch = self._batch(batch_id)
        batch.dataset = {
            "status": "exported",
            "manifest": f"file:///lake/sessions/batch_id={batch_id}/manifest.json",
            "exported_at": _now_ms(),
            "session_count": len(batch.session_ids),
            "event_count": 0,
            "parts": 1,
            "judgments": judgments,
        }

    # WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        raw_body = request.get_data()
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        recorded = RecordedRequest(
            request.method, request.path, {key: request.args[key] for key in request.args}, body, time.monotonic()
        )
        with self.lock:
            self.requests.append(recorded)
            status, payload, headers = self._answer(request, environ, raw_body, body)
            recorded.status = status
        if isinstance(payload, str):
            kind = "text/html; charset=utf-8" if payload.startswith("<!DOCTYPE html>") else "text/plain"
            response = Response(payload, status=status, headers=headers, content_type=kind)
        else:
            response = Response(json.dumps(payload), status=status, headers=headers, content_type="application/json")
        return response(environ, start_response)

    def _answer(
        self, request: Request, environ: dict[str, Any], raw_body: bytes, body: Any
    ) -> tuple[int, JSONObject | str, dict[str, str]]:
        if self.iam_credentials is not None and not self._is_signed(request, environ, raw_body):
            return 403, {"message": "Forbidden"}, {}
        scripted = self.scripted.get(request.path)
        if scripted:
            answer = scripted.pop(0)
            return answer.status, answer.body, answer.headers
        route = ROUTES.get((request.method, request.path))
        if route is None:
            return 404, {"message": "Not Found"}, {}
        try:
            payload = route(self, {key: request.args[key] for key in request.args}, body)
            return ROUTE_STATUS.get((request.method, request.path), 200), payload, {}
        except ApiError as error:
            return error.status, error.body, error.headers

    def _is_signed(self, request: Request, environ: dict[str, Any], raw_body: bytes) -> bool:
        access_key, secret_key = self.iam_credentials or ("", "")
        raw_path = environ.get("RAW_URI", "").partition("?")[0] or quote(request.path)
        return is_signed_by(
            method=request.method,
            path=raw_path,
            query_string=environ.get("QUERY_STRING", ""),
            headers=dict(request.headers.items()),
            body=raw_body,
            access_key=access_key,
            secret_key=secret_key,
            region=IAM_REGION,
            now=time.time() + self.clock_offset_seconds,
        )

    # Routes

    def register_session(self, query: dict[str, str], body: Any) -> JSONObject:
        if not isinstance(body, dict):
            raise invalid("body", "Input should be a valid dictionary")
        for name in ("session_id", "search_query", "search_results"):
            if name not in body:
                raise invalid(name, "Field required")
        if not isinstance(body["search_results"], list):
            raise invalid("search_results", "Input should be a valid list")
        return self._register(body)

    def add_events(self, query: dict[str, str], body: Any) -> JSONObject:
        if not isinstance(body, dict) or not isinstance(body.get("events"), list) or not body["events"]:
            raise invalid("events", "List should have at least 1 item after validation")
        return self._add_events(str(body.get("session_id")), body["events"])

    def mark_irrelevant(self, query: dict[str, str], body: Any) -> JSONObject:
        session = self._session(str(body.get("session_id")))
        session["is_irrelevant"] = True
        return {"session_id": session["session_id"], "is_irrelevant": True}

    def get_session(self, query: dict[str, str], body: Any) -> JSONObject:
        session = self._session(query.get("session_id", ""))
        return _session_view(session, int(query.get("events_limit", "1000")), with_batch=True)

    def use_for_improvement(self, query: dict[str, str], body: Any) -> JSONObject:
        session = self._session(str(body.get("session_id")))
        session_id = session["session_id"]
        if session["is_payload_search"]:
            return {"session_id": session_id, "status": "skipped", "reason": "payload_search"}
        if not session["events"] and not session["is_irrelevant"]:
            return {"session_id": session_id, "status": "skipped", "reason": "no_events"}
        task = self.tasks.get(session_id)
        if task is None or task["status"] != "pending":
            self.task_sequence += 1
            task = {
                "session_id": session_id,
                "status": "pending",
                "created_at": _now_ms(),
                "sequence": self.task_sequence,
                "completed_at": None,
            }
            self.tasks.pop(session_id, None)
            self.tasks[session_id] = task
        return {"session_id": session_id, "status": "scheduled", "task": task}

    def complete_task(self, query: dict[str, str], body: Any) -> JSONObject:
        task = self.tasks.get(str(body.get("session_id")))
        if task is None:
            raise not_found(f"No improvement task for session {body.get('session_id')}")
        status = body.get("status")
        if status not in ("done", "failed"):
            raise invalid("status", "Input should be 'done' or 'failed'")
        if task["status"] == "pending":
            task.update(status=status, completed_at=_now_ms())
            if status == "failed":
                task["error"] = body.get("error")
        elif task["status"] != status:
            raise ApiError(409, {"message": f"The task is already {task['status']}"})
        return task

    def list_tasks(self, query: dict[str, str], body: Any) -> JSONObject:
        limit = int(query.get("limit", "100"))
        after = int(query.get("after", "0"))
        matching = [
            task
            for task in sorted(self.tasks.values(), key=lambda task: task["sequence"])
            if task["status"] == query.get("status", "pending") and task["sequence"] > after
        ]
        page = matching[:limit]
        next_cursor = str(page[-1]["sequence"]) if len(matching) > limit else None
        return {"tasks": page, "next": next_cursor}

    def release(self, query: dict[str, str], body: Any) -> JSONObject:
        return self._release(str(body.get("release_id")))

    def get_batch(self, query: dict[str, str], body: Any) -> JSONObject:
        return self._batch(query.get("batch_id", "")).view()

    def get_report(self, query: dict[str, str], body: Any) -> str:
        batch_id = query.get("batch_id", "")
        self._batch(batch_id)
        if batch_id not in self.report_pages:
            raise not_found(f"Batch with id={batch_id} has no report: its dataset is not exported yet")
        return self.report_pages[batch_id]

    def list_batches(self, query: dict[str, str], body: Any) -> JSONObject:
        limit = int(query.get("limit", "20"))
        newest_first = list(reversed(self.batches))
        if "before" in query:
            position = [batch.batch_id for batch in newest_first].index(query["before"])
            newest_first = newest_first[position + 1 :]
        page = newest_first[:limit]
        next_id = page[-1].batch_id if len(newest_first) > limit else None
        return {"batches": [batch.view() for batch in page], "next": next_id}

    def get_experiment(self, query: dict[str, str], body: Any) -> JSONObject:
        experiment_id = query.get("experiment_id", "")
        if not experiment_id:
            raise invalid("experiment_id", "Field required")
        if experiment_id not in self.experiments:
            raise not_found(f"No exported batch has the experiment with id={experiment_id}")
        return self.experiments[experiment_id]

    def erase_user(self, query: dict[str, str], body: Any) -> JSONObject:
        user_id = valid_user_id(body)
        if user_id is None:
            raise invalid("user_id", "String should have 1 to 256 printable characters")
        return self.erasures.request(user_id, self._user_data(user_id))

    def get_erasure(self, query: dict[str, str], body: Any) -> JSONObject:
        erasure_id = query.get("erasure_id", "")
        if not erasure_id:
            raise invalid("erasure_id", "Field required")
        erasure = self.erasures.read(erasure_id)
        if erasure is None:
            raise not_found(f"Erasure with id={erasure_id} not found")
        return erasure

    def batch_sessions(self, query: dict[str, str], body: Any) -> JSONObject:
        batch = self._batch(query.get("batch_id", ""))
        after_number = int(query.get("after_number", "0"))
        limit = int(query.get("limit", "10"))
        if not 1 <= limit <= 1000:
            raise invalid("limit", "Input should be less than or equal to 1000")
        events_limit = int(query.get("events_limit", "100"))
        later = [self.sessions[id_] for id_ in batch.session_ids if self.sessions[id_]["session_number"] > after_number]
        page = later[:limit]
        return {
            "batch_id": batch.batch_id,
            "last_number": page[-1]["session_number"] if page else None,
            "has_more": len(later) > limit,
            "sessions": [_session_view(session, events_limit, with_batch=False) for session in page],
        }

    # State

    def _register(self, fields: JSONObject) -> JSONObject:
        existing = self.sessions.get(fields["session_id"])
        if existing is None:
            if fields.get("user_id") is not None and self.erasures.under_way(fields["user_id"]):
                raise ApiError(409, {"message": "An erasure of this user is running; retry after it is done"})
            batch = self._collecting_batch()
            batch.session_ids.append(fields["session_id"])
            existing = {
                "search_meta": None,
                "payload_filter": None,
                "sort_by": None,
                "user_id": None,
                "created_at": _now_ms(),
                "is_payload_search": False,
                **fields,
                "batch_id": batch.batch_id,
                "session_number": batch.numbers_used,
                "is_irrelevant": False,
                "events": [],
            }
            self.sessions[fields["session_id"]] = existing
        return {key: existing[key] for key in ("session_id", "batch_id", "session_number")}

    def _add_events(self, session_id: str, events: list[JSONObject]) -> JSONObject:
        session = self._session(session_id)
        known = {event["event_id"] for event in session["events"]}
        accepted = 0
        for event in events:
            if event["event_id"] in known:
                continue
            known.add(event["event_id"])
            accepted += 1
            session["events"].append(
                {"event_type": "click", "created_at": _now_ms(), "meta": None, **event},
            )
        return {"session_id": session_id, "accepted": accepted, "duplicates": len(events) - accepted}

    def _release(self, release_id: str) -> JSONObject:
        for batch in self.batches:
            if batch.release_id == release_id:
                break
        else:
            if not self.batches or self.batches[-1].release_id is not None:
                raise not_found("There is no collecting batch")
            batch = self.batches[-1]
            batch.release_id, batch.released_at = release_id, _now_ms()
        return {
            "release_id": release_id,
            "batch_id": batch.batch_id,
            "released_at": batch.released_at,
            "session_count": len(batch.session_ids),
        }

    def _user_data(self, user_id: str) -> UserData:
        """The user's sessions, events, tasks and exported datasets, and how to erase them."""
        session_ids = [id_ for id_, session in self.sessions.items() if session["user_id"] == user_id]
        batches = {self.sessions[id_]["batch_id"] for id_ in session_ids}

        def remove() -> None:
            for session_id in session_ids:
                batch = self._batch(self.sessions.pop(session_id)["batch_id"])
                batch.session_ids.remove(session_id)
                batch.erased_sessions += 1
                self.tasks.pop(session_id, None)

        return UserData(
            sessions=len(session_ids),
            events=sum(len(self.sessions[id_]["events"]) for id_ in session_ids),
            tasks=sum(id_ in self.tasks for id_ in session_ids),
            datasets=sum(self._batch(batch_id).dataset is not None for batch_id in batches),
            remove=remove,
        )

    def _collecting_batch(self) -> Batch:
        if not self.batches or self.batches[-1].release_id is not None:
            self.batches.append(Batch(f"b-{len(self.batches) + 1:04d}", opened_at=_now_ms()))
        return self.batches[-1]

    def _session(self, session_id: str) -> JSONObject:
        session = self.sessions.get(session_id)
        if session is None:
            raise not_found(f"Session with id={session_id} not found")
        return session

    def _batch(self, batch_id: str) -> Batch:
        for batch in self.batches:
            if batch.batch_id == batch_id:
                return batch
        raise not_found(f"Batch with id={batch_id} not found")


Route = Callable[[FakeApi, dict[str, str], Any], JSONObject | str]

ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/session"): FakeApi.register_session,
    ("POST", "/session/events"): FakeApi.add_events,
    ("POST", "/session/irrelevant"): FakeApi.mark_irrelevant,
    ("GET", "/session"): FakeApi.get_session,
    ("POST", "/session/use-for-improvement"): FakeApi.use_for_improvement,
    ("POST", "/improvement/tasks/complete"): FakeApi.complete_task,
    ("GET", "/improvement/tasks"): FakeApi.list_tasks,
    ("POST", "/batch/release"): FakeApi.release,
    ("GET", "/batch"): FakeApi.get_batch,
    ("GET", "/batch/report"): FakeApi.get_report,
    ("GET", "/batches"): FakeApi.list_batches,
    ("GET", "/experiment"): FakeApi.get_experiment,
    ("GET", "/batch/sessions"): FakeApi.batch_sessions,
    ("POST", "/user/erase"): FakeApi.erase_user,
    ("GET", "/erasure"): FakeApi.get_erasure,
}
ROUTE_STATUS = {("POST", "/user/erase"): 202}  # the others answer 200


def _session_view(session: JSONObject, events_limit: int, *, with_batch: bool) -> JSONObject:
    view = {key: value for key, value in session.items() if key != "batch_id" or with_batch}
    view["events"] = session["events"][:events_limit]
    return view


def _now_ms() -> int:
    return int(time.time() * 1000)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class ServedApi:
    """A werkzeug server on a free loopback port, answering with whichever FakeApi is current."""

    def __init__(self) -> None:
        self.api = FakeApi()
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._dispatch, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.api(environ, start_response)

    def __enter__(self) -> ServedApi:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._thread.join()
