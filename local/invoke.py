"""`make invoke FUNCTION=<logical id> EVENT=events/<file>.json`: one function's real handler on one event, as
`sam local invoke` runs it but without Docker (contract 10): the template's environment, the local AWS of
`make run` (moto on AWS_PORT, default 4566) or, when none is running, a fresh embedded one with empty
tables. Prints what the handler returned (or the error, as Lambda reports it) and exits 0 (1 on an error).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

import boto3
import requests

from local.dynamodb import DEFAULT_AWS_PORT, EmbeddedAws, dynamodb_client, ensure_tables, local_table_names
from local.environment import apply_lambda_environment
from local.queues import ensure_queues
from local.template import load_template, resources_of_type

USAGE = "usage: python -m local.invoke <function logical id> <event file>"


def _running(port: int) -> bool:
    """Whether `make run`'s embedded AWS (moto) answers on the port; something else there does not count."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) != 0:
            return False
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2)
    except requests.RequestException:
        return False
    if answer.status_code != HTTPStatus.OK:
        print(f"port {port} answers, but not as make run's embedded AWS: not used", file=sys.stderr)
        return False
    return True


def _arguments(argv: list[str]) -> tuple[str, dict[str, Any]]:
    functions = sorted(resources_of_type(load_template(), "AWS::Serverless::Function"))
    if len(argv) != 2:
        raise SystemExit(f"{USAGE}\nfunctions: {', '.join(functions)}")
    function_id, event_path = argv
    if function_id not in functions:
        raise SystemExit(f"unknown function {function_id!r}: one of {', '.join(functions)}")
    path = Path(event_path)
    if not path.is_file():
        raise SystemExit(f"no event file {event_path!r} (the samples are in events/)")
    try:
        event: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SystemExit(f"{event_path} is not JSON: {error}") from None
    return function_id, event


def main(argv: list[str]) -> int:
    function_id, event = _arguments(argv)
    port = int(os.environ.get("AWS_PORT", DEFAULT_AWS_PORT))
    embedded = None
    if _running(port):
        endpoint = f"http://127.0.0.1:{port}"
        print(f"using the local AWS of make run at {endpoint}", file=sys.stderr)
    else:
        embedded = EmbeddedAws(0).start()
        endpoint = embedded.endpoint
        print(f"no make run on port {port}: a fresh embedded DynamoDB with empty tables", file=sys.stderr)
    try:
        dynamodb = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or endpoint  # make run may name another one
        apply_lambda_environment(dynamodb, endpoint)
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        ensure_tables(dynamodb_client(dynamodb), local_table_names())
        ensure_queues(boto3.session.Session().client("sqs", endpoint_url=endpoint))
        from local import least_privilege
        from local.harness import LocalFunctions

        least_privilege.install()  # a call outside the function's policy fails as in AWS
        try:
            result = LocalFunctions(instances_per_function=1).invoke(function_id, event)
        except Exception as error:  # as Lambda reports a function error
            print(json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}, indent=2))
            return 1
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
