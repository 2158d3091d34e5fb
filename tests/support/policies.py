"""The permissions each role of template.yaml should hold, written from the code, and a reader for them.

The expected grants follow each function's routes through the domain into the storage gateways it uses
(each gateway module lists its DynamoDB calls), not the template, so widening a policy or calling
DynamoDB in a new way fails until both agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from local.template import Intrinsic

Grants = dict[str, set[str]]  # resource ("SessionsTable", "EventsTable/index/by_created_at") -> actions

EVENTS_BY_TIME = "EventsTable/index/by_created_at"
BATCHES_BY_ID = "BatchesTable/index/batches_by_id"
TASKS_BY_STATUS = "ImprovementTasksTable/index/tasks_by_status"
BUS = "event-bus/${ReleaseEventBusName}"
USER_ID_KEY = "UserIdKeySecret"
USER_INDEX = "SessionIdsTable/index/by_user_key"
ERASURE_MACHINE = "ErasureStateMachine"  # a state machine's Ref is its ARN

# Which DynamoDB calls each function makes, following its routes through the domain into the gateways:
#   Collection: register (claim/take over/assign/mark the session id; number on the pointer, open a batch,
#     finish a stalled release's hand-over: bind release, batch record, delete or unseal the pointer; put the
#     session, read its slot), add_events (session id, put events), mark_irrelevant (session id, update the
#     session), GET /session (session id, session, first events through the time index).
#   UseForImprovement: session id and session, has_events (Query on the table), make the task pending and
#     complete it (conditional updates), get it; list tasks (Query on the sharded status index); with
#     retention, the session's batch record (a task of an exported batch expires with it).
#   BatchSessions: shard pages (Query), first events (index Query), batch record and pointer reads (shard
#     counts, GET /batch), the batches listing (index Query, GET /batches), the report page got from the
#     lake under reports/ (GET /batch/report).
#   BatchRelease: release record and pointer (get/seal/unseal/delete), bind release, batch record and count,
#     settle: slots (Query), tombstones (conditional put, then a read of the slot when it is taken).
#   Outbox: PutEvents on the bus (storage/bus.py); SendMessage to its dead-letter queue (the stream's
#     on-failure destination, sent by Lambda on its behalf); SendMessage of pending tasks to the tasks queue
#     (storage/queue.py); a replay gets the batch record or the session's task.
#   Export: release and batch records (get, claim/finish/fail updates), shard pages and each session's events
#     (Query on the table); retention reads each session's claim and sets expires_at (UpdateItem) on slots,
#     claims, events and tasks;
#     the lake (storage/lake.py): parts and manifest put under sessions/, work files put and got under exports/;
#     the report page: earlier releases from the batches listing (index Query), the page put under reports/;
#     before a claim with a user_key expires, the user's dataset is recorded (PutItem on UserDatasetsTable).
#   Outbox, too: StartExecution of the erasure machine for each erasure record stored (storage/machines.py).
#   Erasure (domain/erasure): the user index (Query), each claim got and deleted; the erasure record, its lock
#     and the active set (storage/erasures.py: Get/Update/Delete); events keys-only (Query) and deleted by
#     BatchWriteItem; the task got and deleted; slots got, erased (PutItem) and walked (Query) to recount;
#     the batch record recounted, held and rewritten (UpdateItem); the user's expired datasets (Query,
#     DeleteItem); the lake: its work file under erasures/, the rewrite's reads and writes under sessions/,
#     exports/, judgments/, reports/ (domain/datasets/rewrite.py), the report page's earlier releases (index
#     Query); ListBucket (a missing work file answers 404; a failed erasure's list is found by its prefix),
#     ListBucketVersions and DeleteObjectVersion (the replaced objects' older versions): the only role that
#     may delete versions.
#   ErasureRequest: POST /user/erase puts the user's lock and the erasure record (conditional puts), reads them,
#     and clears a lock its closed erasure left (conditional delete); GET /erasure reads the record; with
#     UserIdHashing=hmac the key, to look up the user id as stored.
EXPECTED_GRANTS: dict[str, Grants] = {
    "CollectionFunction": {
        "SessionIdsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "SessionsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        "BatchesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "EventsTable": {"dynamodb:PutItem"},
        EVENTS_BY_TIME: {"dynamodb:Query"},
        USER_ID_KEY: {"secretsmanager:GetSecretValue"},  # with UserIdHashing=hmac (storage/secrets.py)
    },
    "UseForImprovementFunction": {
        "SessionIdsTable": {"dynamodb:GetItem"},
        "SessionsTable": {"dynamodb:GetItem"},
        "EventsTable": {"dynamodb:Query"},
        "ImprovementTasksTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        TASKS_BY_STATUS: {"dynamodb:Query"},
        "BatchesTable": {"dynamodb:GetItem"},
    },
    "BatchSessionsFunction": {
        "SessionsTable": {"dynamodb:Query"},
        EVENTS_BY_TIME: {"dynamodb:Query"},
        "BatchesTable": {"dynamodb:GetItem"},
        BATCHES_BY_ID: {"dynamodb:Query"},
        "DatasetBucket/reports/*": {"s3:GetObject"},
    },
    "BatchReleaseFunction": {
        "BatchesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "SessionsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"},
    },
    "OutboxFunction": {
        ERASURE_MACHINE: {"states:StartExecution"},
        BUS: {"events:PutEvents"},
        "BatchesTable": {"dynamodb:GetItem"},
        "ImprovementTasksTable": {"dynamodb:GetItem"},
        "OutboxDeadLetterQueue": {"sqs:SendMessage"},
        "ImprovementTasksQueue": {"sqs:SendMessage"},
    },
    "ErasureRequestFunction": {
        "BatchesTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        USER_ID_KEY: {"secretsmanager:GetSecretValue"},
    },
    "ExportFunction": {
        "BatchesTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "SessionsTable": {"dynamodb:Query", "dynamodb:UpdateItem"},
        "SessionIdsTable": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "EventsTable": {"dynamodb:Query", "dynamodb:UpdateItem"},
        "ImprovementTasksTable": {"dynamodb:UpdateItem"},
        "DatasetBucket/sessions/*": {"s3:PutObject", "s3:AbortMultipartUpload"},
        "DatasetBucket/judgments/*": {"s3:PutObject", "s3:AbortMultipartUpload"},
        "DatasetBucket/exports/*": {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"},
        BATCHES_BY_ID: {"dynamodb:Query"},
        "DatasetBucket/reports/*": {"s3:PutObject"},
        "UserDatasetsTable": {"dynamodb:PutItem"},
    },
    "ErasureFunction": {
        USER_INDEX: {"dynamodb:Query"},
        "SessionIdsTable": {"dynamodb:GetItem", "dynamodb:DeleteItem"},
        "ImprovementTasksTable": {"dynamodb:GetItem", "dynamodb:DeleteItem"},
        "EventsTable": {"dynamodb:Query", "dynamodb:BatchWriteItem"},
        "SessionsTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"},
        "BatchesTable": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        BATCHES_BY_ID: {"dynamodb:Query"},
        "UserDatasetsTable": {"dynamodb:Query", "dynamodb:DeleteItem"},
        **{
            f"DatasetBucket/{prefix}/*": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
            for prefix in ("sessions", "judgments", "exports", "reports")
        },
        "DatasetBucket/erasures/*": {"s3:GetObject", "s3:PutObject"},
        "DatasetBucket": {"s3:ListBucket", "s3:ListBucketVersions"},
        "DatasetBucket/*": {"s3:DeleteObjectVersion"},
    },
}

# Step Functions sets up log delivery with these calls, and X-Ray takes traces with these; none of them
# supports resource-level permissions, so they are the only ones allowed on "*".
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
LOG_WRITE_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(resource: Any) -> str:
    """`!GetAtt T.Arn` -> "T"; `!Sub "${T.Arn}/index/i"` -> "T/index/i"; the project's event bus -> BUS;
    `!Ref UserIdKeySecret` (a secret's Ref is its ARN) -> USER_ID_KEY; anything else is refused."""
    if isinstance(resource, Intrinsic) and resource.name == "Ref" and resource.value in (USER_ID_KEY, ERASURE_MACHINE):
        return str(resource.value)
    if isinstance(resource, Intrinsic) and resource.name == "Fn::GetAtt":
        target = resource.value if isinstance(resource.value, str) else ".".join(resource.value)
        if target.endswith(".Arn"):
            return target.removesuffix(".Arn")
    if isinstance(resource, Intrinsic) and resource.name == "Fn::Sub" and isinstance(resource.value, str):
        text = resource.value
        if text.startswith("${") and ".Arn}" in text:
            logical_id, rest = text[2:].split(".Arn}", 1)
            return logical_id + rest
        if text == "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:" + BUS:
            return BUS
    raise AssertionError(f"resource {resource!r} is not a table or index of this template")


def statements(policies: Any) -> Iterator[dict[str, Any]]:
    for policy in as_list(policies):
        assert isinstance(policy, dict), f"policy {policy!r}: only inline statements are reviewable here"
        document = policy.get("PolicyDocument", policy)
        assert set(document) <= {"Version", "Statement"}, f"unexpected policy shape {policy!r}"
        for statement in as_list(document["Statement"]):
            yield from _granted_when_on(statement)


def _granted_when_on(statement: Any) -> Iterator[dict[str, Any]]:
    """A statement; one under `!If [Condition, statement, AWS::NoValue]` is reviewed as granted (its
    condition on), since that is when the function uses it."""
    if isinstance(statement, Intrinsic) and statement.name == "Fn::If":
        _, when_on, when_off = statement.value
        assert when_off == Intrinsic("Ref", "AWS::NoValue"), f"a conditional grant with another grant {statement!r}"
        yield when_on
    else:
        yield statement


def function_grants(function: dict[str, Any]) -> Grants:
    properties = function["Properties"]
    assert "Role" not in properties, "a function role set by hand escapes this review"
    grants: Grants = {}
    for statement in statements(properties.get("Policies", [])):
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        actions = set(as_list(statement["Action"]))
        for action in actions:
            assert "*" not in action, f"wildcard action {action}"
        for resource in as_list(statement["Resource"]):
            grants.setdefault(resource_name(resource), set()).update(actions)
    return grants
