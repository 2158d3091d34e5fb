"""Bring the improvement tasks of a stack created before the sharded tasks index up to date
(docs/operations.md, "Upgrading"): `python -m ops.upgrade_tasks --stack NAME [--region R] [--profile P]`.

Tasks stored before the upgrade lack the keys of the index `tasks_by_status`, so `GET /improvement/tasks`
does not list them, and the pending ones were never delivered: the tasks stream did not exist when they
were stored. For each such task this sends a pending one to the tasks queue, then writes its index keys.
A run stopped half way is run again: a task is marked only after it was sent, so none is lost; one may
be sent twice, which workers tolerate (completion is idempotent).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from clickstream.domain.improvement import task_view
from clickstream.records import StoredTask
from clickstream.storage.tasks import queue_bucket, queue_order


def legacy_tasks(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    """The tasks without index keys, a Scan page at a time."""
    request: dict[str, Any] = {"TableName": table, "FilterExpression": "attribute_not_exists(queue_bucket)"}
    while True:
        page = dynamodb.scan(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def upgrade(dynamodb: Any, sqs: Any, table: str, queue_url: str) -> dict[str, int]:
    counts = {"indexed": 0, "delivered": 0}
    for item in tqdm(legacy_tasks(dynamodb, table), desc="tasks", unit=" tasks", file=sys.stderr):
        task = StoredTask(
            session_id=item["session_id"]["S"],
            batch_id=item["batch_id"]["S"],
            session_number=int(item["session_number"]["N"]),
            status=item["status"]["S"],
            requested_at=int(item["requested_at"]["N"]),
        )
        if task.status == "pending":
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(task_view(task).model_dump()))
            counts["delivered"] += 1
        dynamodb.update_item(
            TableName=table,
            Key={"session_id": {"S": task.session_id}},
            UpdateExpression="SET queue_bucket = if_not_exists(queue_bucket, :bucket), queue_order = :order",
            ExpressionAttributeValues={
                ":bucket": {"S": queue_bucket(task.status, task.session_id)},
                ":order": {"S": queue_order(task.requested_at, task.session_id)},
            },
        )
        counts["indexed"] += 1
    return counts


def _stack_outputs(session: boto3.session.Session, stack: str) -> dict[str, str]:
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="the deployed stack's name")
    parser.add_argument("--region")
    parser.add_argument("--profile")
    args = parser.parse_args(argv)
    try:
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        outputs = _stack_outputs(session, args.stack)
        counts = upgrade(
            session.client("dynamodb"),
            session.client("sqs"),
            outputs["ImprovementTasksTableName"],
            outputs["ImprovementTasksQueueUrl"],
        )
    except (BotoCoreError, ClientError, KeyError) as error:
        print(f"upgrade failed: {error}", file=sys.stderr)
        return 1
    print(f"{counts['indexed']} tasks indexed, {counts['delivered']} pending tasks delivered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
