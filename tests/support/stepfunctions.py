"""The template's state machines, run by moto's Step Functions engine on their real definitions.

moto interprets a definition (`execute_state_machine`); its Lambda backend without Docker only echoes, so
every `lambda:invoke` is routed in-process to the real handler of the function the ARN names (an exception
becomes a function error whose `errorType` is its class name, as the Lambda runtime reports it). Retry
backoffs and Wait states are recorded, not slept.
"""

from __future__ import annotations

import json
import re
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from moto import mock_aws
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from local.harness import LocalFunctions
from local.template import ROOT, Intrinsic, load_template

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

REGION = "us-east-1"
ACCOUNT = "123456789012"
PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": "local",
}
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def function_arn(function_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_id}"


def resolve(value: Any, resources: dict[str, str]) -> str:
    """A DefinitionSubstitutions value in a local account: functions by logical id, parameters by their
    default, other resources by `resources` (logical id -> name), a mapping's entry by its resolved keys."""
    if isinstance(value, Intrinsic) and value.name == "Fn::FindInMap":
        mapping, first, second = (resolve(key, resources) for key in value.value)
        return str(load_template()["Mappings"][mapping][first][second])
    return _resolve_reference(value, resources)


def _resolve_reference(value: Any, resources: dict[str, str]) -> str:
    template = load_template()
    parameters = template.get("Parameters", {})

    def reference(name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in resources:
            return resources[name]
        if name in parameters:
            return str(parameters[name]["Default"])
        if name.endswith(".Arn") and template["Resources"][name[:-4]]["Type"] == "AWS::Serverless::Function":
            return function_arn(name[:-4])
        raise ValueError(f"cannot resolve {name!r} locally")

    if isinstance(value, str):
        return value
    if isinstance(value, Intrinsic) and value.name == "Fn::GetAtt":
        return reference(value.value if isinstance(value.value, str) else ".".join(value.value))
    if isinstance(value, Intrinsic) and value.name == "Ref":
        return reference(value.value)
    if isinstance(value, Intrinsic) and value.name == "Fn::Sub" and isinstance(value.value, str):
        return re.sub(r"\$\{([^}]+)\}", lambda match: reference(match.group(1)), value.value)
    raise ValueError(f"cannot resolve {value!r} locally")


def machine_properties(machine_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = load_template()["Resources"][machine_id]["Properties"]
    return properties


def substitutions(machine_id: str, resources: dict[str, str] | None = None) -> dict[str, str]:
    return {
        name: resolve(value, resources or {})
        for name, value in machine_properties(machine_id)["DefinitionSubstitutions"].items()
    }


def definition(machine_id: str, resources: dict[str, str] | None = None) -> str:
    """The machine's definition as CloudFormation would substitute it."""
    text: str = (ROOT / machine_properties(machine_id)["DefinitionUri"]).read_text(encoding="utf-8")
    for name, value in substitutions(machine_id, resources).items():
        text = text.replace(f"${{{name}}}", value)
    assert "${" not in text, "a placeholder of the definition has no DefinitionSubstitutions entry"
    return text


@dataclass
class RoutedLambda:
    """Lambda's Invoke answered by the template's functions, with service errors to inject."""

    functions: LocalFunctions
    events: dict[str, list[Any]] = field(default_factory=dict)
    service_errors: list[str] = field(default_factory=list)  # error codes for the next invocations

    def invoke(self, function_name: str, body: str, response_headers: dict[str, str]) -> bytes:
        function_id = function_name.rsplit(":", 1)[-1]
        if function_id not in self.functions.function_ids:
            raise LambdaClientError("ResourceNotFoundException", f"Function not found: {function_name}")
        event = json.loads(body) if body else {}
        self.events.setdefault(function_id, []).append(event)
        if self.service_errors:
            error = LambdaClientError(self.service_errors.pop(0), "injected by the test")
            error.code = 429 if error.error_type == "TooManyRequestsException" else 500
            raise error
        try:
            result = self.functions.invoke(function_id, event)
        except Exception as error:  # the runtime reports any exception as a function error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
        return json.dumps(result).encode()


@dataclass
class Engine:
    """moto's Step Functions, with what its executions waited for."""

    sfn: SFNClient
    lambdas: RoutedLambda
    retry_waits: list[float]
    waits: list[int]

    def create(self, machine_id: str, resources: dict[str, str] | None = None) -> str:
        return self.sfn.create_state_machine(
            name=machine_id,
            definition=definition(machine_id, resources),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{machine_id}",
        )["stateMachineArn"]

    def run(self, machine_arn: str, execution_input: Any, name: str, timeout_s: float = 60) -> Execution:
        started = self.sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(execution_input))
        deadline = time.monotonic() + timeout_s
        while True:
            described = self.sfn.describe_execution(executionArn=started["executionArn"])
            if described["status"] != "RUNNING":
                break
            assert time.monotonic() < deadline, "the execution did not finish"
            time.sleep(0.02)
        output = json.loads(described["output"]) if "output" in described else None
        return Execution(described["status"], output, described.get("error"), started["executionArn"])


@dataclass
class Execution:
    status: str
    output: Any
    error: str | None
    arn: str = ""


@contextmanager
def step_functions(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, functions: LocalFunctions
) -> Iterator[Engine]:
    """moto's AWS in this process, the `tables` fixture's tables on the embedded moto, and moto's engine."""
    import boto3

    with mock_aws(config=MOTO_CONFIG):
        # mock_aws resets every in-process moto backend when it starts, the embedded moto's included:
        # the tables are created after it.
        request.getfixturevalue("tables")
        lambdas = RoutedLambda(functions)

        def invoke(  # noqa: PLR0917 - the signature of moto's LambdaBackend.invoke
            backend: Any, name: str, qualifier: Any, body: str, headers: Any, response_headers: dict[str, str]
        ) -> bytes:
            return lambdas.invoke(name, body, response_headers)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
        retry_waits: list[float] = []
        monkeypatch.setattr(retrier_decl, "time", types.SimpleNamespace(sleep=retry_waits.append))
        waits: list[int] = []
        monkeypatch.setattr(WaitFunction, "_wait_interval", lambda self, env, wait_seconds: waits.append(wait_seconds))
        yield Engine(boto3.client("stepfunctions", region_name=REGION), lambdas, retry_waits, waits)
