"""The OpenAPI document: generated from the handlers, merged without silent overwrites, committed up to date."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.openapi.exceptions import OpenAPIMergeError

from local.openapi import COMMITTED_PATH, generate, merge, render


def part(path: str, method: str = "get", schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "part", "version": "0"},
        "paths": {path: {method: {"responses": {"200": {"description": "OK"}}}}},
        "components": {"schemas": schemas or {}},
    }


def test_the_committed_document_matches_the_code() -> None:
    committed = COMMITTED_PATH.read_text(encoding="utf-8")
    assert committed == render(generate()), "docs/openapi.json is stale: run `make openapi`"
    assert json.loads(committed)["openapi"].startswith("3.")


def test_the_parts_of_every_function_are_merged() -> None:
    document = merge({"A": part("/a"), "B": part("/b", "post"), "C": part("/a", "post")})
    assert sorted(document["paths"]) == ["/a", "/b"]
    assert sorted(document["paths"]["/a"]) == ["get", "post"]


def test_a_route_defined_by_two_functions_is_refused() -> None:
    with pytest.raises(OpenAPIMergeError, match="GET /a"):
        merge({"A": part("/a"), "B": part("/a")})


def test_a_schema_two_functions_define_differently_is_refused() -> None:
    same = {"Thing": {"type": "object", "properties": {"x": {"type": "integer"}}}}
    other = {"Thing": {"type": "object", "properties": {"x": {"type": "string"}}}}
    assert "Thing" in merge({"A": part("/a", schemas=same), "B": part("/b", schemas=same)})["components"]["schemas"]
    with pytest.raises(ValueError, match="Thing"):
        merge({"A": part("/a", schemas=same), "B": part("/b", schemas=other)})
