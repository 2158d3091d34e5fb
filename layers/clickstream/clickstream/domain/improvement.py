"""Improvement tasks (contract 2.1, 12): scheduling a useful session, its worker's report, and polling.

A session has at most one task. Scheduling makes it `pending` (the one already pending, if any: never
two); its worker reports it `done` or `failed`, after which scheduling the session again makes a new
pending task. Delivery to the worker's queue is not done here: the outbox reads every task that became
pending from the table's stream (domain/announcements.py), so a crash after the task is stored cannot
lose it.
"""

from __future__ import annotations

from clickstream.domain.context import Context
from clickstream.domain.late_writes import LateWrites
from clickstream.domain.sessions import Sessions
from clickstream.errors import ConflictError, TaskCompletedOtherwise, TaskNotFound
from clickstream.models import ImprovementDecision, ImprovementTask, TaskCompletion, TaskList
from clickstream.records import StoredTask, task_cursor


def task_view(task: StoredTask) -> ImprovementTask:
    return ImprovementTask.model_validate(task, from_attributes=True)


class Improvement:
    def __init__(self, context: Context, sessions: Sessions, late_writes: LateWrites) -> None:
        self._storage = context.storage
        self._telemetry = context.telemetry
        self._clock = context.clock
        self._sessions = sessions
        self._late_writes = late_writes

    def use_for_improvement(self, session_id: str) -> ImprovementDecision:
        """Skip payload searches and sessions with neither events nor the irrelevant mark; otherwise a task
        is pending for the session (the one already pending, if any: never two). Scheduling is open after the
        export too (tasks are not in datasets); a task of an exported batch expires with it (contract 13.6)."""
        # UseForImprovementFunction may not write the session-ids table: scheduling leaves a missing mark
        # of the registration to the collection routes (docs/protocol.md, Registration).
        session = self._sessions.stored(session_id, complete_registration=False)
        if session.is_payload_search:
            return self._skipped(session_id, "payload_search")
        if not session.is_irrelevant and not self._storage.events.exist_for(session_id):
            return self._skipped(session_id, "no_events")
        task = StoredTask(session_id, session.batch_id, session.session_number, "pending", self._clock())
        if self._storage.tasks.put_pending(task, self._late_writes.task_expiry(session.batch_id)):
            self._telemetry.count("SessionsScheduled")
        else:
            pending = self._storage.tasks.get(session_id)
            if pending is None or pending.status != "pending":
                raise ConflictError(f"The task of session {session_id} changed while scheduling; retry")
            task = pending
        return ImprovementDecision(session_id=session_id, status="scheduled", task=task_view(task))

    def complete(self, completion: TaskCompletion) -> ImprovementTask:
        """The worker's report. Repeating it gives the same answer; the other status for a completed task,
        or a report on a task the session was scheduled again since, is refused."""
        session_id = completion.session_id
        completed = self._storage.tasks.complete(
            session_id, completion.status, self._clock(), completion.error, completion.requested_at
        )
        if completed is not None:
            self._telemetry.count("TasksCompleted", status=completion.status)
            return task_view(completed)
        task = self._storage.tasks.get(session_id)
        if task is None:
            raise TaskNotFound(session_id)
        if completion.requested_at is not None and task.requested_at != completion.requested_at:
            raise TaskCompletedOtherwise(
                f"The task of session {session_id} requested at {completion.requested_at} was replaced by one "
                f"requested at {task.requested_at} (status {task.status})"
            )
        if task.status == completion.status:
            return task_view(task)  # the same report again
        if task.status == "pending":  # completed and scheduled again between the two reads
            raise ConflictError(f"The task of session {session_id} changed while completing; retry")
        raise TaskCompletedOtherwise(
            f"The task of session {session_id} is already {task.status} (since {task.completed_at})"
        )

    def tasks(self, status: str, limit: int, after: str | None) -> TaskList:
        """Tasks of `status`, oldest first; `next` is the `after` of the following page."""
        tasks, more = self._storage.tasks.oldest(status, limit, after)
        last = tasks[-1] if tasks else None
        next_after = task_cursor(last.requested_at, last.session_id) if more and last else None
        return TaskList(tasks=[task_view(task) for task in tasks], next=next_after)

    def _skipped(self, session_id: str, reason: str) -> ImprovementDecision:
        self._telemetry.count("SessionsSkipped", reason=reason)
        return ImprovementDecision.model_validate({"session_id": session_id, "status": "skipped", "reason": reason})
