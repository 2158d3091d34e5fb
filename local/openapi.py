"""The service's OpenAPI document, generated from the handlers' own route definitions."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

from local.lambda_runtime import load_function_module
from local.template import ROOT, function_code, http_routes, load_template

COMMITTED_PATH = ROOT / "docs" / "openapi.json"
TITLE = "Clickstream service"
DESCRIPTION = (
    "Collects search sessions and their events into numbered batches, pages them for model improvement "
    "and releases batches on a schedule. Every route is IAM-authorised (SigV4) when deployed."
)


def generate() -> dict[str, Any]:
    """The OpenAPI document of every HTTP function of the template, merged into one."""
    template = load_template()
    parts = {}
    for function_id in sorted({route.function_id for route in http_routes(template)}):
        code_uri, handler = function_code(template, function_id)
        schema = load_function_module(code_uri, handler).app.get_openapi_schema()
        parts[function_id] = schema.model_dump(by_alias=True, exclude_none=True, mode="json")
    return merge(parts)


def merge(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One document from each function's own. Powertools' merge refuses a route defined twice; a schema
    name two functions define differently is refused here (Powertools would keep the last one silently)."""
    merged = OpenAPIMerge(title=TITLE, version=_version(), description=DESCRIPTION, on_conflict="error")
    schemas: dict[str, Any] = {}
    for function_id, part in parts.items():
        for name, schema in part.get("components", {}).get("schemas", {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"{function_id} defines the schema {name} differently from another function")
        merged.add_schema(part)
    document = merged.get_openapi_schema()
    document["paths"] = dict(sorted(document["paths"].items()))
    if schemas:
        document["components"]["schemas"] = dict(sorted(document["components"]["schemas"].items()))
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
