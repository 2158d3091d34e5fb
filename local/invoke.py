"""`make invoke FUNCTION=<logical id> EVENT=events/<file>.json`: one function's real handler on one event, as
`sam local invoke` runs it but without Docker (contract 10): the template's environment, the AWS of this
checkout's `make run` on the same PORT (as its .run/make-run-<PORT>.json names it) or, when none is running,
a fresh embedded one with empty tables; never whatever else answers on a port. Says which AWS it used (on
stderr), prints what the handler returned (or the error, as Lambda reports it) and exits 0 (1 on an error).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3

from local.dynamodb import DEFAULT_API_PORT, EmbeddedAws, dynamodb_client, ensure_tables, local_table_names
from local.environment import apply_lambda_environment
from local.queues import ensure_queues
from local.run_record import RunRecord, read_record, record_path, stale_reason
from local.secrets import apply_user_id_secret
from local.template import ROOT, load_template, resources_of_type

USAGE = "usage: python -m local.invoke <function logical id> <event file>"


def _running_server(api_port: int) -> RunRecord | None:
    """This checkout's `make run` on `api_port`, if its record names one that is still up; says why not."""
    path = record_path(api_port).relative_to(ROOT)
    record = read_record(api_port)
    if record is None:
        print(f"no make run on PORT={api_port} in this checkout (no {path})", file=sys.stderr)
        return None
    if (reason := stale_reason(record)) is not None:
        print(f"{path} is stale ({reason}): not used", file=sys.stderr)
        return None
    return record


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
    api_port = int(os.environ.get("PORT", DEFAULT_API_PORT))
    embedded = None
    server = _running_server(api_port)
    if server is not None:
        endpoint, dynamodb = server.aws_endpoint, server.dynamodb_endpoint
        print(f"using the AWS of make run at {server.api_url} (pid {server.pid}): {endpoint}", file=sys.stderr)
    else:
        embedded = EmbeddedAws(0).start()
        endpoint = dynamodb = embedded.endpoint
        print(f"using a fresh embedded AWS with empty tables: {endpoint}", file=sys.stderr)
    dynamodb = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or dynamodb
    if dynamodb != endpoint:
        print(f"and DynamoDB at {dynamodb}", file=sys.stderr)
    try:
        apply_lambda_environment(dynamodb, endpoint)
        apply_user_id_secret(endpoint)  # USER_ID_HASHING=hmac: the same key as make run's
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
