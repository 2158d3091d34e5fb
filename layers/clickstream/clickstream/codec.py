"""JSON in and out: strict request parsing, and the compact text the service stores and sends."""

from __future__ import annotations

import json
import math
from typing import Any

# Deeper documents are refused. A fixed bound, far below the interpreter's recursion limit, so a document
# that parses is also one that every later step (validation, encoding, rendering) can walk.
MAX_JSON_DEPTH = 64


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


def _nested_deeper_than(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels; level by level, so no recursion and no stack."""
    level: list[Any] = [document]
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            for child in container.values() if isinstance(container, dict) else container:
                if isinstance(child, dict | list):
                    below.append(child)
        level = below
        depth += 1
    return False


def parse_body(text: str | bytes) -> Any:
    """Parse a request body: no NaN/Infinity, no duplicate keys, at most MAX_JSON_DEPTH levels of nesting."""
    try:
        document = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicate_keys)
    except RecursionError:
        raise MalformedJson(f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    except UnicodeDecodeError:
        raise MalformedJson("body is not UTF-8") from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # an integer literal longer than Python converts (sys.get_int_max_str_digits)
        raise MalformedJson("a number has too many digits") from None
    if isinstance(document, dict | list) and _nested_deeper_than(document, MAX_JSON_DEPTH):
        raise MalformedJson(f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return document


# Integers a double holds exactly: every reader of a dataset (Athena's double column, DuckDB) gets the same value.
MAX_EXACT_INTEGER = 2**53


def exact_json_number(value: Any) -> int | float:
    """A JSON number as sent (an int stays an int); ValueError for anything else, a non-finite float or an
    integer beyond 2^53."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number (within the range of a double)")
    if isinstance(value, int) and abs(value) > MAX_EXACT_INTEGER:
        raise ValueError(f"an integer must lie within -2^53..2^53 ({MAX_EXACT_INTEGER})")
    return value


def encode_json(value: Any) -> str:
    """Compact UTF-8 JSON text; ValueError for text that has no UTF-8 form (lone surrogates)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text.encode("utf-8")  # UnicodeEncodeError is a ValueError
    return text


def wire_size(text: str) -> int:
    """Bytes `text` takes inside Lambda's response payload, where the body is a JSON string with ASCII
    escapes: quotes and backslashes double, a non-ASCII character takes 6 or 12 bytes. Never less than
    its UTF-8 size, so a budget on it bounds both the HTTP body and the Lambda payload."""
    return len(json.dumps(text)) - 2
