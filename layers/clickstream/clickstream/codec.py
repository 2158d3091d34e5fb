"""JSON in and out: strict request parsing, and the compact text the service stores and sends."""

from __future__ import annotations

import json
from typing import Any


class MalformedJson(json.JSONDecodeError):
    """A body that is not one unambiguous JSON document. A JSONDecodeError, so Powertools reports it as such."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "", 0)


def _refuse_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not valid JSON")


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedJson(f"duplicate key {key!r}")
            seen.add(key)
    return document


def parse_body(text: str | bytes) -> Any:
    """Parse a request body: no NaN/Infinity, no duplicate keys, no nesting deep enough to exhaust the stack."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicate_keys)
    except RecursionError:
        raise MalformedJson("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise MalformedJson("body is not UTF-8") from None


def encode_json(value: Any) -> str:
    """Compact UTF-8 JSON text; ValueError for text that has no UTF-8 form (lone surrogates)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text.encode("utf-8")  # UnicodeEncodeError is a ValueError
    return text


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))
