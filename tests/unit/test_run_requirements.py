"""`make run` installs requirements-run.txt only (not the dev stack): every package the functions, the layer
and the local runtime import at run time must come with it, or `make run` would fail for a new user alone."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from local.template import ROOT

SERVING_CODE = ("layers/clickstream/clickstream", "functions", "local")
OWN_PACKAGES = {"clickstream", "local", "app"}
# moto's server (the embedded AWS: moto.moto_server.werkzeug_app) imports these; moto itself does not need them.
MOTO_SERVER_IMPORTS = {"flask": "local/dynamodb.py", "flask_cors": "local/dynamodb.py"}


def requirement_lines(path: Path) -> Iterator[str]:
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            yield from requirement_lines(path.parent / line[3:].strip())
        elif line.startswith("-e "):  # a local package, named by its metadata once installed
            yield "clickstream-client" if line[3:].strip().rstrip("/").endswith("client") else line
        elif line:
            yield line


def installed_closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements bring in, following installed metadata (extras included)."""
    seen: set[str] = set()
    pending = [Requirement(line) for line in requirements]
    while pending:
        requirement = pending.pop()
        name = canonical(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for dependency in metadata.distribution(name).requires or []:
            needed = Requirement(dependency)
            extras = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(needed)
    return {key.split("[", 1)[0] for key in seen}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_imports(path: Path) -> set[str]:
    """Top-level modules a file imports, except under `if TYPE_CHECKING:` (types only, never at run time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OWN_PACKAGES


def test_requirements_run_brings_every_package_serving_imports() -> None:
    installed = installed_closure(list(requirement_lines(ROOT / "requirements-run.txt")))
    providers = metadata.packages_distributions()
    missing = {
        module: user
        for module, user in MOTO_SERVER_IMPORTS.items()
        if not {canonical(name) for name in providers.get(module, [module])} & installed
    }
    for folder in SERVING_CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in runtime_imports(path):
                if not {canonical(name) for name in providers.get(module, [module])} & installed:
                    missing.setdefault(module, str(path.relative_to(ROOT)))
    assert not missing, f"imported at run time but not brought in by requirements-run.txt: {missing}"


def test_requirements_run_leaves_the_dev_stack_out() -> None:
    installed = installed_closure(list(requirement_lines(ROOT / "requirements-run.txt")))
    assert not installed & {"mypy", "ruff", "pytest", "schemathesis", "bandit", "cfn-lint", "duckdb"}
