"""Every AWS call a function makes locally is checked against that function's policy in template.yaml.

Lambda runs each function under its own role; locally all functions share one process (and the layer's
clients), so the function whose code is running is a context variable (`local.lambda_runtime.
running_function`), set around each invocation. `install` adds two botocore hooks to every client made
from then on (botocore registers `BUILTIN_HANDLERS` on each new session):

* `before-parameter-build`: the call's (action, resource ARN) pairs (`requested`) are evaluated against the
  running function's policy (local/iam.py). A call outside every function (test setup, assertions, the
  local automation standing in for Lambda's own pollers) is not checked.
* `before-call`: a denied call gets the answer AWS gives (DynamoDB, EventBridge, Step Functions: 400
  `AccessDeniedException`; S3 and SQS: 403 `AccessDenied`) without reaching the endpoint, and botocore
  raises it as a `ClientError`, as it would raise AWS's.
* S3 also hides whether an object exists from a caller without `s3:ListBucket`: a GetObject or HeadObject
  of a missing key answers 403, not 404 (`after-call`).
"""

from __future__ import annotations

import contextvars
import json
from typing import Any
from urllib.parse import urlparse

from botocore import handlers
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from s3transfer.futures import BoundedExecutor

from local.iam import IAM_PREFIX, PARTITION, S3_ACTIONS, function_policy, region
from local.lambda_runtime import running_function
from local.queues import ACCOUNT

Requested = list[tuple[str, str]]  # (action, resource ARN)

DENIED = "local_least_privilege_denied"
HIDES_MISSING = "local_least_privilege_hides_missing"
# The error code and HTTP status each service answers a call its caller may not make with.
DENIAL = {"s3": ("AccessDenied", 403), "sqs": ("AccessDenied", 403), "cloudwatch": ("AccessDenied", 403)}
DEFAULT_DENIAL = ("AccessDeniedException", 400)


def _table_arn(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:{PARTITION}:dynamodb:{region()}:{ACCOUNT}:table/{name}"


def _dynamodb(operation: str, params: dict[str, Any]) -> Requested:
    if "TransactItems" in params:
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "Get": "GetItem"}
        kinds["ConditionCheck"] = "ConditionCheckItem"
        return [
            (f"dynamodb:{kinds[kind]}", _table_arn(request["TableName"]))
            for item in params["TransactItems"]
            for kind, request in item.items()
        ]
    if "RequestItems" in params:
        return [(f"dynamodb:{operation}", _table_arn(table)) for table in params["RequestItems"]]
    arn = _table_arn(str(params.get("TableName", "*")))
    if params.get("IndexName"):
        arn += f"/index/{params['IndexName']}"
    return [(f"dynamodb:{operation}", arn)]


def _s3(operation: str, params: dict[str, Any]) -> Requested:
    action = S3_ACTIONS.get(operation, f"s3:{operation}")
    if operation == "DeleteObject" and "VersionId" in params:
        action = "s3:DeleteObjectVersion"  # deleting a version is its own action (an erasure's only)
    arn = f"arn:{PARTITION}:s3:::{params.get('Bucket', '')}"
    return [(action, f"{arn}/{params['Key']}" if "Key" in params else arn)]


def _sqs(operation: str, params: dict[str, Any]) -> Requested:
    action = "sqs:SendMessage" if operation == "SendMessageBatch" else f"sqs:{operation}"
    name = urlparse(str(params.get("QueueUrl", ""))).path.rsplit("/", 1)[-1] or "*"
    return [(action, f"arn:{PARTITION}:sqs:{region()}:{ACCOUNT}:{name}")]


def _bus_arn(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:{PARTITION}:events:{region()}:{ACCOUNT}:event-bus/{name}"


def _events(operation: str, params: dict[str, Any]) -> Requested:
    if operation == "PutEvents":
        buses = {str(entry.get("EventBusName") or "default") for entry in params.get("Entries", [])}
        return [("events:PutEvents", _bus_arn(bus)) for bus in sorted(buses)]
    return [(f"events:{operation}", _bus_arn(str(params.get("EventBusName") or params.get("Name") or "default")))]


def _states(operation: str, params: dict[str, Any]) -> Requested:
    arn = params.get("stateMachineArn") or params.get("executionArn") or "*"
    return [(f"states:{operation}", str(arn))]


def _secrets(operation: str, params: dict[str, Any]) -> Requested:
    return [(f"secretsmanager:{operation}", str(params.get("SecretId") or "*"))]


_BY_SERVICE = {
    "dynamodb": _dynamodb,
    "s3": _s3,
    "sqs": _sqs,
    "events": _events,
    "stepfunctions": _states,
    "secretsmanager": _secrets,
}


def requested(service: str, operation: str, params: dict[str, Any]) -> Requested:
    """What IAM authorizes for this call; a service without resource-level rules here asks for "*"."""
    if service in _BY_SERVICE:
        return _BY_SERVICE[service](operation, params)
    return [(f"{IAM_PREFIX.get(service, service)}:{operation}", "*")]


def denial_message(function_id: str, action: str, resource: str) -> str:
    role = f"arn:{PARTITION}:sts::{ACCOUNT}:assumed-role/{function_id}Role/{function_id}"
    return (
        f"User: {role} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


def _check(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    function_id = running_function.get()
    if function_id is None:
        return
    service = model.service_model.service_name
    policy = function_policy(function_id)
    for action, resource in requested(service, model.name, params):
        if not policy.allows(action, resource):
            context[DENIED] = (service, denial_message(function_id, action, resource))
            return
    if service == "s3" and model.name in ("GetObject", "HeadObject"):
        bucket = f"arn:{PARTITION}:s3:::{params.get('Bucket', '')}"
        context[HIDES_MISSING] = not policy.allows("s3:ListBucket", bucket)


class _Body:
    """The `raw` of an AWSResponse (botocore reads it through `stream()`)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _refuse(params: dict[str, Any], context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
    if DENIED not in context:
        return None
    service, message = context[DENIED]
    code, status = DENIAL.get(service, DEFAULT_DENIAL)
    body = json.dumps({"__type": code, "message": message}).encode()
    response = AWSResponse(params.get("url", ""), status, HTTPHeaders(), _Body(body))
    metadata = {"HTTPStatusCode": status, "HTTPHeaders": {}, "RequestId": "local-least-privilege"}
    return response, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}


def _hide_missing(
    http_response: AWSResponse, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
) -> None:
    if not context.get(HIDES_MISSING) or http_response.status_code != 404:
        return
    http_response.status_code = 403
    parsed["Error"] = {"Code": "AccessDenied" if model.name == "GetObject" else "403", "Message": "Access Denied"}
    parsed.setdefault("ResponseMetadata", {})["HTTPStatusCode"] = 403


_HOOKS = [
    ("before-parameter-build", _check),
    ("before-call", _refuse),
    ("after-call.s3", _hide_missing),
]


class _InContext:
    """An s3transfer task run in the context it was submitted from (s3transfer carries only botocore's own)."""

    def __init__(self, task: Any) -> None:
        self._task = task
        self._context = contextvars.copy_context()
        self.transfer_id = task.transfer_id

    def __call__(self, *args: Any) -> Any:
        return self._context.run(self._task, *args)


_submit: Any = BoundedExecutor.submit


def _submit_in_context(executor: BoundedExecutor, task: Any, tag: Any = None, block: bool = True) -> Any:
    return _submit(executor, _InContext(task), tag, block)


def install() -> None:
    """Check every client made from now on in this process (idempotent). Uploads (`upload_file`) run in
    s3transfer's threads: they are made to carry the running function along."""
    for hook in _HOOKS:
        if hook not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(hook)
    BoundedExecutor.submit = _submit_in_context  # type: ignore[method-assign,assignment]
