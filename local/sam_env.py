"""The env-vars file for `sam local invoke` / `sam local start-api` (Docker) against `make run`'s local AWS.

`python -m local.sam_env` writes local/sam-env.json: each function's template environment with the local
table names and the local tasks queue as a container reaches the host (`host.docker.internal`, port 4566).
`sam local` only overrides variables the template declares, so that is all it holds; the endpoint of every
AWS service comes from the template parameter LocalAwsEndpoint (`--parameter-overrides`). A test keeps the
committed file equal to what this writes.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from local.dynamodb import DEFAULT_AWS_PORT, local_table_names
from local.environment import LOCAL_RESOURCES
from local.queues import local_queue_urls
from local.template import ROOT, function_environment, load_template, resources_of_type

SAM_ENV_PATH = ROOT / "local" / "sam-env.json"
HOST_FROM_CONTAINER = f"http://host.docker.internal:{DEFAULT_AWS_PORT}"


def sam_environment() -> dict[str, Any]:
    template = load_template()
    names = {**local_table_names(), **local_queue_urls(HOST_FROM_CONTAINER), **LOCAL_RESOURCES}
    return {
        function_id: function_environment(template, function_id, names)
        for function_id in sorted(resources_of_type(template, "AWS::Serverless::Function"))
    }


def render() -> str:
    return json.dumps(sam_environment(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SAM_ENV_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SAM_ENV_PATH.relative_to(ROOT)}", file=sys.stderr)
