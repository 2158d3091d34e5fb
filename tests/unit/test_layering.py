"""The stored records, the views, the input models and every module of the domain are plain Python: they
import in a fresh interpreter where boto3 and botocore cannot be imported at all (so nothing imported by
other tests hides a dependency), and the domain reaches storage only through its ports (domain/ports.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "clickstream" / "clickstream"
DOMAIN = PACKAGE / "domain"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


DOMAIN_MODULES = sorted(_module_name(path) for path in DOMAIN.rglob("*.py"))
BOTO_FREE = [
    "clickstream.records",
    "clickstream.views",
    "clickstream.models",
    "clickstream.erasure_models",
    *DOMAIN_MODULES,
]

# Refuses boto3 and botocore (and the report page's template engine, which only clickstream.pages may
# load, on its first page) outright, then imports the module and names anything of theirs it loaded.
PROBE = """
import importlib.abc, sys

class NoAws(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("boto3", "botocore", "jinja2", "markupsafe"):
            raise ImportError(f"{name} is not importable here")
        return None

sys.meta_path.insert(0, NoAws())
import {module}
print(sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "jinja2", "markupsafe")))
"""


def test_every_domain_module_is_probed() -> None:
    assert len(DOMAIN_MODULES) >= 20, DOMAIN_MODULES
    assert {"clickstream.domain.announcements", "clickstream.domain.datasets.export"} <= set(DOMAIN_MODULES)


@pytest.mark.parametrize("module", BOTO_FREE)
def test_the_module_imports_without_boto3(module: str) -> None:
    result = subprocess.run(  # noqa: S603 - this interpreter, a probe built from the module names above
        [sys.executable, "-c", PROBE.replace("{module}", module)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{module} pulls in {result.stdout.strip()}"


@pytest.mark.parametrize("path", sorted(DOMAIN.rglob("*.py")), ids=_module_name)
def test_the_domain_never_names_storage(path: Path) -> None:
    """Not even for types: the domain knows its ports; storage implements them."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not {name for name in imported if name.split(".")[:2] == ["clickstream", "storage"]}
    assert not {name for name in imported if name.split(".")[0] in ("boto3", "botocore", "mypy_boto3_dynamodb")}


# Only the export's judge step fits click models: every other function's cold start is spared numpy.
NUMPY_FREE = ["clickstream.service", "clickstream.domain.datasets.export", "clickstream.domain.judgments.counting"]


@pytest.mark.parametrize("module", NUMPY_FREE)
def test_the_export_path_imports_without_numpy(module: str) -> None:
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'numpy'))"
    result = subprocess.run(  # noqa: S603 - this interpreter, a probe built from the module names above
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{module} pulls in {result.stdout.strip()}"
