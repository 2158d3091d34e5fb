"""Rooms stay small: the service's code (layer, functions, local runtime) in files of at most 300 lines,
classes of at most 250 and functions of at most 60, so a change lands in one small place. The function
rule holds in the tools around it too: the benchmarks, the client and its tests, the operator tools."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from local.template import ROOT

MAX_FILE_LINES = 300
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60
SERVICE_CODE = ("layers/clickstream/clickstream", "functions", "local")
TOOL_CODE = ("bench", "client/src", "client/tests", "ops")


def python_files(folders: tuple[str, ...]) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def service_files() -> list[Path]:
    return python_files(SERVICE_CODE)


def long_functions(tree: ast.AST) -> list[str]:
    return [
        f"{node.name}: {span} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (span := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    ]


def oversized(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    found = []
    if (lines := len(text.splitlines())) > MAX_FILE_LINES:
        found.append(f"{lines} lines")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ClassDef)
            and (span := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_CLASS_LINES
        ):
            found.append(f"{node.name}: {span} lines")
    return found + long_functions(tree)


def test_the_service_code_is_found() -> None:
    names = {path.name for path in service_files()}
    assert {"registration.py", "release.py", "paging.py", "server.py", "app.py"} <= names


@pytest.mark.parametrize("path", service_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_room_is_too_big(path: Path) -> None:
    assert not oversized(path), f"{path.relative_to(ROOT)}: {oversized(path)}"


def test_the_tool_code_is_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in python_files(TOOL_CODE)}
    assert {"bench/report.py", "client/src/clickstream_client/cli.py", "ops/upgrade_tasks.py"} <= names


@pytest.mark.parametrize("path", python_files(TOOL_CODE), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_function_of_the_tools_is_too_long(path: Path) -> None:
    assert not long_functions(ast.parse(path.read_text(encoding="utf-8"))), str(path.relative_to(ROOT))
