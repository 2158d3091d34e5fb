"""The service's OpenAPI document, generated from the handlers' own route definitions."""

from __future__ import annotations

import json
from typing import Any

from local.lambda_runtime import load_function_module
from local.template import ROOT, function_code, http_routes, load_template

COMMITTED_PATH = ROOT / "docs" / "openapi.json"
TITLE = "Clickstream service"
DESCRIPTION = (
    "Collects search sessions and their events into numbered batches, pages them for model improvement "
    "and releases batches on a schedule. Every route is IAM-authorised (SigV4) when deployed."
)


def generate() -> dict[str, Any]:
    """Merge the OpenAPI documents of every HTTP function of the template into one."""
    document: dict[str, Any] = {}
    template = load_template()
    for function_id in sorted({route.function_id for route in http_routes(template)}):
        code_uri, handler = function_code(template, function_id)
        module = load_function_module(code_uri, handler)
        part = json.loads(module.app.get_openapi_json_schema(title=TITLE, version=_version(), description=DESCRIPTION))
        if not document:
            document = part
            continue
        document["paths"].update(part.get("paths", {}))
        document.setdefault("components", {}).setdefault("schemas", {}).update(
            part.get("components", {}).get("schemas", {})
        )
    document["paths"] = dict(sorted(document["paths"].items()))
    schemas = document.get("components", {}).get("schemas")
    if schemas:
        document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def _version() -> str:
    import tomllib

    with (ROOT / "pyproject.toml").open("rb") as stream:
        version: str = tomllib.load(stream)["project"]["version"]
    return version


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    COMMITTED_PATH.parent.mkdir(exist_ok=True)
    COMMITTED_PATH.write_text(render(generate()), encoding="utf-8")
    print(f"wrote {COMMITTED_PATH.relative_to(ROOT)}")
