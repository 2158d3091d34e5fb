"""The environment the functions get locally: template.yaml's variables, local tables, local credentials."""

from __future__ import annotations

import os

from local.dynamodb import LOCAL_REGION, local_table_names
from local.queues import local_queue_urls
from local.template import ROOT, function_environment, load_template, resources_of_type

# Local endpoints accept any credentials: placeholders, never real keys.
LOCAL_ACCESS_KEY_ID = "local"
LOCAL_SECRET_ACCESS_KEY = "local"  # noqa: S105 # nosec B105
# Locally the datasets go to a folder (LAKE_DIR), not to the stack's bucket; no erasure state machine runs
# (local/automation.py runs an erasure's steps itself).
LOCAL_RESOURCES = {"DatasetBucket": "", "ErasureStateMachine": ""}
DEFAULT_LAKE_DIR = ROOT / ".lake"


def local_resource_names(aws_endpoint: str | None, **resources: str) -> dict[str, str]:
    """What the template's `!Ref`s name locally: tables, queue URLs, the bucket (none unless given)."""
    return {**local_table_names(), **local_queue_urls(aws_endpoint), **LOCAL_RESOURCES, **resources}


def lambda_environment(dynamodb_endpoint: str | None, aws_endpoint: str | None = None) -> dict[str, str]:
    """Every function's variables from template.yaml (tables named as locally), with local credentials.

    `aws_endpoint` serves the other services the functions call (EventBridge, SQS): the embedded moto.
    """
    template = load_template()
    names = local_resource_names(aws_endpoint)
    environment = {
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        "LAKE_DIR": str(DEFAULT_LAKE_DIR),
    }
    if dynamodb_endpoint:
        environment["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    if aws_endpoint:
        environment["AWS_ENDPOINT_URL_EVENTBRIDGE"] = aws_endpoint  # botocore names it by service id
        environment["AWS_ENDPOINT_URL_SQS"] = aws_endpoint
        environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = aws_endpoint  # the key of USER_ID_HASHING=hmac
    for function_id in sorted(resources_of_type(template, "AWS::Serverless::Function")):
        environment.update(function_environment(template, function_id, names))
    return environment


def apply_lambda_environment(dynamodb_endpoint: str, aws_endpoint: str) -> None:
    """Set `lambda_environment` in this process; what is already set (a limit, LAKE_DIR) wins (contract 8.4)."""
    for name, value in lambda_environment(dynamodb_endpoint, aws_endpoint).items():
        os.environ.setdefault(name, value)
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
