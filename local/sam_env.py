"""The env-vars file for `sam local invoke` / `sam local start-api` (Docker) against `make run`'s local AWS.

`python -m local.sam_env` writes local/sam-env.json: for each function, its template environment with the
local tables and queue, and the endpoints of `make run`'s embedded moto as a container reaches the host
(`host.docker.internal`, port 4566). A test keeps the committed file equal to what this writes.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from local.dynamodb import DEFAULT_AWS_PORT, LOCAL_REGION, local_table_names
from local.environment import LOCAL_ACCESS_KEY_ID, LOCAL_RESOURCES, LOCAL_SECRET_ACCESS_KEY
from local.queues import local_queue_urls
from local.template import ROOT, function_environment, load_template, resources_of_type

SAM_ENV_PATH = ROOT / "local" / "sam-env.json"
HOST_FROM_CONTAINER = f"http://host.docker.internal:{DEFAULT_AWS_PORT}"


def sam_environment() -> dict[str, Any]:
    template = load_template()
    names = {**local_table_names(), **local_queue_urls(HOST_FROM_CONTAINER), **LOCAL_RESOURCES}
    shared = {
        "AWS_ENDPOINT_URL_DYNAMODB": HOST_FROM_CONTAINER,
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": HOST_FROM_CONTAINER,
        "AWS_ENDPOINT_URL_EVENTBRIDGE": HOST_FROM_CONTAINER,
        "AWS_ENDPOINT_URL_SQS": HOST_FROM_CONTAINER,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        # Inside the function's container (its only writable place); S3 is not emulated here.
        "LAKE_DIR": "/tmp/lake",  # noqa: S108 # nosec B108
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    return {
        function_id: {**function_environment(template, function_id, names), **shared}
        for function_id in sorted(resources_of_type(template, "AWS::Serverless::Function"))
    }


def render() -> str:
    return json.dumps(sam_environment(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SAM_ENV_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SAM_ENV_PATH.relative_to(ROOT)}", file=sys.stderr)
