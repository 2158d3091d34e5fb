"""Each function's policy in template.yaml, evaluated as IAM evaluates it, against the local resources.

A statement's resources (`!GetAtt T.Arn`, `!Sub "${T.Arn}/index/i"`, `!Sub "arn:...:event-bus/${Bus}"`)
become the ARNs of the resources the functions reach locally: a table, queue, bucket or bus gets the
name the function's environment gives it (SESSIONS_TABLE, TASKS_QUEUE_URL, LAKE_BUCKET, EVENT_BUS_NAME),
read at the time of the call, so a test that points LAKE_BUCKET at its own bucket is checked against it.
An AWS call is `(action, resource ARN)` pairs (`requested`); each must be allowed by a statement and
denied by none (`Policy.allows`). A statement under `!If` counts when its condition holds for the template
parameters the environment sets (e.g. USER_ID_HASHING for UserIdHashing). IAM conditions and SAM policy
templates are not understood: they are refused rather than guessed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from local.queues import ACCOUNT, local_queue_name
from local.template import Intrinsic, load_template, resources_of_type, with_defaults

PARTITION = "aws"
FUNCTION = "AWS::Serverless::Function"
# IAM's prefix where it differs from botocore's service name.
IAM_PREFIX = {"stepfunctions": "states", "cloudwatch": "cloudwatch", "logs": "logs"}
# S3 operations authorized as another action (multipart parts are PutObject; HEAD is GetObject).
S3_ACTIONS = {
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListParts": "s3:ListMultipartUploadParts",
    "ListObjectVersions": "s3:ListBucketVersions",
}
_ARN_OF = {
    "AWS::DynamoDB::Table": "arn:{partition}:dynamodb:{region}:{account}:table/{name}",
    "AWS::SQS::Queue": "arn:{partition}:sqs:{region}:{account}:{name}",
    "AWS::S3::Bucket": "arn:{partition}:s3:::{name}",
    # !Ref of a secret is its ARN: the environment carries it (USER_ID_HMAC_SECRET_ARN).
    "AWS::SecretsManager::Secret": "{name}",
    FUNCTION: "arn:{partition}:lambda:{region}:{account}:function:{name}",
}


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@cache
def _variables_naming() -> dict[str, str]:
    """Logical id or parameter -> the environment variable that carries its name (`X: !Ref Y`)."""
    template = load_template()
    blocks = [template.get("Globals", {}).get("Function", {})]
    blocks += [function["Properties"] for function in resources_of_type(template, FUNCTION).values()]
    naming: dict[str, str] = {}
    for block in blocks:
        for variable, value in block.get("Environment", {}).get("Variables", {}).items():
            # `X: !If [C, !Ref Y, ...]` names Y where C holds
            named = value.value[1] if isinstance(value, Intrinsic) and value.name == "Fn::If" else value
            if isinstance(named, Intrinsic) and named.name == "Ref":
                naming.setdefault(named.value, variable)
    return naming


def physical_name(logical_id: str) -> str:
    """What `!Ref logical_id` names locally now: a parameter's value, a table, queue or bucket name."""
    template = load_template()
    value = os.environ.get(_variables_naming().get(logical_id, ""), "")
    resource = template["Resources"].get(logical_id)
    if resource is not None and resource["Type"] == "AWS::SQS::Queue":
        return value.rsplit("/", 1)[-1] if value else local_queue_name(logical_id)
    if value:
        return value
    if resource is None:
        return str(template["Parameters"][logical_id]["Default"])
    return logical_id  # local tables are named by their logical id (local/dynamodb.py)


def resource_arn(logical_id: str) -> str:
    resource_type = load_template()["Resources"][logical_id]["Type"]
    if resource_type not in _ARN_OF:
        raise ValueError(f"no local ARN for {logical_id} ({resource_type})")
    return _ARN_OF[resource_type].format(
        partition=PARTITION, region=region(), account=ACCOUNT, name=physical_name(logical_id)
    )


def _substitute(name: str) -> str:
    pseudo = {"AWS::Partition": PARTITION, "AWS::Region": region(), "AWS::AccountId": ACCOUNT}
    if name in pseudo:
        return pseudo[name]
    if name.endswith(".Arn"):
        return resource_arn(name.removesuffix(".Arn"))
    return physical_name(name)


def resolve(value: Any) -> str:
    """A policy's resource as an ARN pattern of the local resources."""
    if isinstance(value, str):
        return value
    if isinstance(value, Intrinsic) and value.name == "Fn::GetAtt":
        target = value.value if isinstance(value.value, str) else ".".join(value.value)
        if target.endswith(".Arn"):
            return resource_arn(target.removesuffix(".Arn"))
    if isinstance(value, Intrinsic) and value.name == "Fn::Sub" and isinstance(value.value, str):
        return re.sub(r"\$\{([^}]+)\}", lambda match: _substitute(match.group(1)), value.value)
    if isinstance(value, Intrinsic) and value.name == "Ref":
        return physical_name(value.value)
    raise ValueError(f"cannot resolve the policy resource {value!r} locally")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _pattern(text: str) -> re.Pattern[str]:
    """IAM's wildcards: `*` any characters (slashes included), `?` one."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text), re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    allow: bool
    actions: tuple[re.Pattern[str], ...]
    resources: tuple[re.Pattern[str], ...]

    def covers(self, action: str, resource: str) -> bool:
        return any(a.fullmatch(action) for a in self.actions) and any(r.fullmatch(resource) for r in self.resources)


@dataclass(frozen=True)
class Policy:
    function_id: str
    statements: tuple[Statement, ...]

    def allows(self, action: str, resource: str) -> bool:
        """Allowed by a statement and denied by none (IAM: an explicit deny wins, no allow is a deny)."""
        covering = [statement for statement in self.statements if statement.covers(action, resource)]
        return any(statement.allow for statement in covering) and all(statement.allow for statement in covering)


def _statements(policies: Any, function_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in _as_list(policies):
        if not isinstance(policy, dict) or not ({"Statement"} <= set(policy.get("PolicyDocument", policy))):
            raise ValueError(f"{function_id}: policy {policy!r} is not an inline statement (not checked locally)")
        statements += _as_list(policy.get("PolicyDocument", policy)["Statement"])
    return statements


def _parameters() -> dict[str, str]:
    """The template parameters the environment sets (a variable that is `!Ref <parameter>`)."""
    parameters = load_template().get("Parameters", {})
    return {
        name: os.environ[variable]
        for name, variable in _variables_naming().items()
        if name in parameters and variable in os.environ
    }


def function_policy(function_id: str) -> Policy:
    """The function's policy as it stands now (resource names from the current environment)."""
    names = tuple(os.environ.get(variable, "") for variable in _variables_naming().values())
    return _policy(function_id, names, region())


@cache
def _policy(function_id: str, names: tuple[str, ...], at_region: str) -> Policy:
    """The policy with these resource names (the cache key: a test that renames a resource gets its own)."""
    template = load_template()
    properties = with_defaults(template, template["Resources"][function_id]["Properties"], _parameters())
    statements = []
    for statement in _statements(properties.get("Policies", []), function_id):
        if set(statement) - {"Sid", "Effect", "Action", "Resource"}:
            raise ValueError(f"{function_id}: statement {statement!r} has parts not checked locally")
        statements.append(
            Statement(
                allow=statement["Effect"] == "Allow",
                actions=tuple(_pattern(action) for action in _as_list(statement["Action"])),
                resources=tuple(_pattern(resolve(resource)) for resource in _as_list(statement["Resource"])),
            )
        )
    return Policy(function_id, tuple(statements))
