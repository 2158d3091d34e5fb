"""The improvement tasks queue (contract 9): each pending task, sent to the worker's SQS queue.

SQS calls: SendMessage on the queue.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from clickstream.errors import StorageUnavailable
from clickstream.settings import Settings
from clickstream.storage.plumbing import service_config

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


class TaskQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    @classmethod
    def from_settings(cls, settings: Settings) -> TaskQueue:
        config = service_config(settings)
        return cls(boto3.session.Session().client("sqs", config=config), settings.tasks_queue_url)

    def send(self, task: dict[str, Any]) -> None:
        """One message, the task object as its body; StorageUnavailable when SQS did not take it."""
        if not self._queue_url:
            raise StorageUnavailable() from RuntimeError("TASKS_QUEUE_URL is not set")
        try:
            self._client.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(task))
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable() from error
