"""Every DynamoDB call of the service, one gateway per table or aggregate. Nothing above imports boto3.

The gateways share one client and its conventions (`plumbing`). Each implements a port of the domain
(`clickstream.domain.ports`) structurally; `Storage`, built once per container, is the `Stores` the
domain's Context carries. Stream images are decoded here too (`changes`), by the gateways' own decoders.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickstream.settings import Settings
from clickstream.storage.batch_records import BatchRecords
from clickstream.storage.claims import Claims
from clickstream.storage.erasures import Erasures
from clickstream.storage.events import Events
from clickstream.storage.experiments import ExperimentRecords
from clickstream.storage.plumbing import Dynamo, new_client
from clickstream.storage.pointer import CollectingPointer
from clickstream.storage.releases import Releases
from clickstream.storage.sessions import SessionSlots
from clickstream.storage.tasks import Tasks
from clickstream.storage.user_datasets import UserDatasets


@dataclass(frozen=True)
class Storage:
    """The service's tables, as gateways over one shared client."""

    dynamo: Dynamo
    claims: Claims
    pointer: CollectingPointer
    releases: Releases
    batches: BatchRecords
    sessions: SessionSlots
    events: Events
    tasks: Tasks
    experiments: ExperimentRecords
    erasures: Erasures
    user_datasets: UserDatasets

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        return cls.over(Dynamo(new_client(settings)), settings)

    @classmethod
    def over(cls, dynamo: Dynamo, settings: Settings) -> Storage:
        return cls(
            dynamo=dynamo,
            claims=Claims(dynamo, settings.session_ids_table),
            pointer=CollectingPointer(dynamo, settings.batches_table),
            releases=Releases(dynamo, settings.batches_table),
            batches=BatchRecords(dynamo, settings.batches_table),
            sessions=SessionSlots(dynamo, settings.sessions_table),
            events=Events(dynamo, settings.events_table),
            tasks=Tasks(dynamo, settings.tasks_table),
            experiments=ExperimentRecords(dynamo, settings.batches_table),
            erasures=Erasures(dynamo, settings.batches_table),
            user_datasets=UserDatasets(dynamo, settings.user_datasets_table),
        )


__all__ = ["Storage"]
