"""The template's SQS queues, made locally on the embedded moto with their template attributes (the
dead-letter redrive included), and the URLs the functions get for them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from local.template import Intrinsic, load_template, resources_of_type

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

ACCOUNT = "123456789012"  # moto's account
QUEUE = "AWS::SQS::Queue"


def local_queue_name(logical_id: str) -> str:
    return f"local-{logical_id}"


def local_queue_urls(aws_endpoint: str | None) -> dict[str, str]:
    """What `!Ref <queue>` is locally: the queue's URL on the embedded moto (empty without one)."""
    template = load_template()
    return {
        logical_id: f"{aws_endpoint}/{ACCOUNT}/{local_queue_name(logical_id)}" if aws_endpoint else ""
        for logical_id in resources_of_type(template, QUEUE)
    }


def _value(value: Any, parameters: dict[str, Any], arns: dict[str, str]) -> str:
    if isinstance(value, Intrinsic) and value.name == "Ref":
        return str(parameters[value.value]["Default"])
    if isinstance(value, Intrinsic) and value.name == "Fn::GetAtt":
        target = value.value if isinstance(value.value, str) else ".".join(value.value)
        logical_id, attribute = target.split(".")
        if attribute != "Arn":
            raise ValueError(f"cannot resolve {target} locally")
        return arns[logical_id]
    return str(value)


def ensure_queues(sqs: SQSClient) -> dict[str, str]:
    """Create every queue of template.yaml that is missing (dead-letter queues first); logical id -> URL."""
    template = load_template()
    parameters = template.get("Parameters", {})
    queues = resources_of_type(template, QUEUE)
    # A queue that redrives to another is made after it.
    ordered = sorted(queues, key=lambda logical_id: "RedrivePolicy" in queues[logical_id].get("Properties", {}))
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for logical_id in ordered:
        properties = queues[logical_id].get("Properties", {})
        attributes = {
            name: _value(properties[name], parameters, arns)
            for name in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds")
            if name in properties
        }
        if "RedrivePolicy" in properties:
            redrive = properties["RedrivePolicy"]
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": _value(redrive["deadLetterTargetArn"], parameters, arns),
                    "maxReceiveCount": int(redrive["maxReceiveCount"]),
                }
            )
        url = sqs.create_queue(QueueName=local_queue_name(logical_id), Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
        urls[logical_id] = url
        arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return urls
