"""The erasure state machine, started by the outbox for each erasure requested (contract 17).

Step Functions calls: StartExecution on ErasureStateMachine.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from clickstream.errors import StorageUnavailable
from clickstream.settings import Settings
from clickstream.storage.plumbing import service_config

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

_BUSY = frozenset({"ThrottlingException", "ServiceUnavailable", "InternalServerError", "ExecutionLimitExceeded"})


class ErasureMachine:
    def __init__(self, client: SFNClient, machine_arn: str) -> None:
        self._client = client
        self._machine_arn = machine_arn

    @classmethod
    def from_settings(cls, settings: Settings) -> ErasureMachine | None:
        """None without a machine (local runs: local/automation.py runs the steps)."""
        if not settings.erasure_state_machine_arn:
            return None
        client = boto3.session.Session().client("stepfunctions", config=service_config(settings))
        return cls(client, settings.erasure_state_machine_arn)

    def start(self, erasure_id: str) -> bool:
        """The erasure's execution, named by its id, so a record delivered twice starts it once; False when
        it was started already. StorageUnavailable when Step Functions did not take it (the outbox retries)."""
        try:
            self._client.start_execution(
                stateMachineArn=self._machine_arn, name=erasure_id, input=json.dumps({"erasure_id": erasure_id})
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "ExecutionAlreadyExists":
                return False
            if code in _BUSY:
                raise StorageUnavailable() from error
            raise
        except (ConnectionError, ReadTimeoutError) as error:
            raise StorageUnavailable() from error
        return True
