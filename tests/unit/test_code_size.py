"""Rooms stay small: the service's code (layer, functions, local runtime) in files of at most 300 lines,
classes of at most 250 and functions of at most 60, so a change lands in one small place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from local.template import ROOT

MAX_FILE_LINES = 300
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60
SERVICE_CODE = ("layers/clickstream/clickstream", "functions", "local")


def service_files() -> list[Path]:
    return sorted(path for folder in SERVICE_CODE for path in (ROOT / folder).rglob("*.py"))


def oversized(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = []
    if (lines := len(text.splitlines())) > MAX_FILE_LINES:
        found.append(f"{lines} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            span = (node.end_lineno or node.lineno) - node.lineno + 1
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            if span > limit:
                found.append(f"{node.name}: {span} lines")
    return found


def test_the_service_code_is_found() -> None:
    names = {path.name for path in service_files()}
    assert {"registration.py", "release.py", "paging.py", "server.py", "app.py"} <= names


@pytest.mark.parametrize("path", service_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_room_is_too_big(path: Path) -> None:
    assert not oversized(path), f"{path.relative_to(ROOT)}: {oversized(path)}"
