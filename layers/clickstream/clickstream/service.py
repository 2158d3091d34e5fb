"""The service the handlers call: one facade over the protocols of `clickstream.domain`.

Each method is one route of docs/contract.md; the work happens in the protocol modules. The stores and the
lake are the domain's ports (domain/ports.py); a container passes `clickstream.storage.Storage` and the lake
its settings name.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from clickstream.concurrency import Fanout
from clickstream.domain.batches import BatchDirectory
from clickstream.domain.context import Context
from clickstream.domain.datasets.export import Exporter
from clickstream.domain.datasets.rewrite import DatasetRewriter
from clickstream.domain.erasure.requests import ErasureGuard, ErasureRequests
from clickstream.domain.erasure.steps import ErasureSteps
from clickstream.domain.experiment_history import ExperimentHistory
from clickstream.domain.improvement import Improvement
from clickstream.domain.late_writes import LateWrites
from clickstream.domain.paging import Pager
from clickstream.domain.ports import KeySource, Lake, ReportPages, Stores
from clickstream.domain.pseudonyms import UserIds
from clickstream.domain.registration import Registrar
from clickstream.domain.release import Releaser
from clickstream.domain.rules import Clock, now_ms
from clickstream.domain.sessions import Sessions
from clickstream.domain.telemetry import Silent, Telemetry
from clickstream.erasure_models import ErasureRequested, ErasureView
from clickstream.models import (
    EventsAdded,
    ImprovementDecision,
    ImprovementTask,
    IrrelevantMark,
    NewEvent,
    NewSession,
    Registration,
    Release,
    TaskCompletion,
    TaskList,
)
from clickstream.pages import JinjaReportPages
from clickstream.reports import BatchList, BatchView, ExperimentAcrossBatches
from clickstream.settings import Settings
from clickstream.storage.lake import lake_from_settings
from clickstream.storage.secrets import key_from_settings


class Clickstream:
    def __init__(
        self,
        storage: Stores,
        settings: Settings,
        *,
        telemetry: Telemetry | None = None,
        fanout: Fanout | None = None,
        lake: Lake | None = None,
        pages: ReportPages | None = None,
        clock: Clock = now_ms,
        sleep: Callable[[float], None] = time.sleep,
        user_id_key: KeySource | None = None,
    ) -> None:
        self.storage = storage
        self.settings = settings
        context = Context(
            storage=storage,
            settings=settings,
            fanout=fanout or Fanout(settings.dynamodb_max_concurrency),
            telemetry=telemetry or Silent(),
            clock=clock,
            sleep=sleep,
            user_ids=UserIds(user_id_key or key_from_settings(settings)),
        )
        self.user_ids = context.user_ids
        self.releaser = Releaser(context)
        self.erasure_requests = ErasureRequests(context)
        self.registrar = Registrar(context, self.releaser, ErasureGuard(context))
        self.late_writes = LateWrites(context)
        self.sessions = Sessions(context, self.registrar, self.late_writes)
        self.improvement = Improvement(context, self.sessions, self.late_writes)
        self.lake = lake or lake_from_settings(settings)
        self.batches = BatchDirectory(context, self.lake)
        self.pager = Pager(context, self.batches)
        report_pages = pages or JinjaReportPages()
        self.exporter = Exporter(context, self.lake, report_pages)
        self.rewriter = DatasetRewriter(context, self.lake, report_pages)  # an erasure's (contract 17)
        self.experiments = ExperimentHistory(context)
        self.erasure_steps = ErasureSteps(context, self.lake, self.rewriter)

    def register(self, new: NewSession) -> Registration:
        return self.registrar.register(new)

    def add_events(self, session_id: str, events: list[NewEvent]) -> EventsAdded:
        return self.sessions.add_events(session_id, events)

    def mark_irrelevant(self, session_id: str) -> IrrelevantMark:
        return self.sessions.mark_irrelevant(session_id)

    def session_json(self, session_id: str, events_limit: int) -> str:
        return self.sessions.session_json(session_id, events_limit)

    def use_for_improvement(self, session_id: str) -> ImprovementDecision:
        return self.improvement.use_for_improvement(session_id)

    def complete_task(self, completion: TaskCompletion) -> ImprovementTask:
        return self.improvement.complete(completion)

    def tasks(self, status: str, limit: int, after: str | None) -> TaskList:
        return self.improvement.tasks(status, limit, after)

    def batch_page_json(self, batch_id: str, after_number: int, limit: int, events_limit: int) -> str:
        return self.pager.page_json(batch_id, after_number, limit, events_limit)

    def release(self, release_id: str) -> Release:
        return self.releaser.release(release_id)

    def batch(self, batch_id: str) -> BatchView:
        return self.batches.view(batch_id)

    def report_page(self, batch_id: str) -> bytes:
        return self.batches.report_page(batch_id)

    def list_batches(self, limit: int, before: str | None) -> BatchList:
        return self.batches.newest(limit, before)

    def experiment(self, experiment_id: str) -> ExperimentAcrossBatches:
        return self.experiments.across_batches(experiment_id)

    def erase_user(self, user_id: str) -> ErasureRequested:
        return self.erasure_requests.request(user_id)

    def erasure(self, erasure_id: str) -> ErasureView:
        return self.erasure_requests.get(erasure_id)
