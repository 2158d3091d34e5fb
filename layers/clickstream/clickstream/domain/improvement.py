"""Scheduling sessions for model improvement (contract 2.1)."""

from __future__ import annotations

from clickstream.domain.context import Context
from clickstream.domain.sessions import Sessions
from clickstream.errors import ConflictError
from clickstream.models import ImprovementDecision, ImprovementTask
from clickstream.records import StoredTask


class Improvement:
    def __init__(self, context: Context, sessions: Sessions) -> None:
        self._storage = context.storage
        self._telemetry = context.telemetry
        self._clock = context.clock
        self._sessions = sessions

    def use_for_improvement(self, session_id: str) -> ImprovementDecision:
        """Skip payload searches and sessions with neither events nor the irrelevant mark; otherwise a task
        is pending for the session (the one already pending, if any: never two)."""
        session = self._sessions.stored(session_id)
        if session.is_payload_search:
            return self._skipped(session_id, "payload_search")
        if not session.is_irrelevant and not self._storage.events.exist_for(session_id):
            return self._skipped(session_id, "no_events")
        task = StoredTask(
            session_id=session_id,
            batch_id=session.batch_id,
            session_number=session.session_number,
            status="pending",
            requested_at=self._clock(),
        )
        if self._storage.tasks.put_pending(task):
            self._telemetry.count("SessionsScheduled")
        else:
            pending = self._storage.tasks.get(session_id)
            if pending is None or pending.status != "pending":
                raise ConflictError(f"The task of session {session_id} changed while scheduling; retry")
            task = pending
        return ImprovementDecision(
            session_id=session_id,
            status="scheduled",
            task=ImprovementTask(
                session_id=task.session_id,
                batch_id=task.batch_id,
                session_number=task.session_number,
                status="pending",
                requested_at=task.requested_at,
            ),
        )

    def _skipped(self, session_id: str, reason: str) -> ImprovementDecision:
        self._telemetry.count("SessionsSkipped", reason=reason)
        return ImprovementDecision.model_validate({"session_id": session_id, "status": "skipped", "reason": reason})
