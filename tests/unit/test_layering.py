"""The stored records, the views and the input models are plain Python: importing them for their types
must not pull in boto3; nothing but the judge step pulls in numpy (a fresh interpreter, so nothing imported
by other tests hides it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LAYER = Path(__file__).resolve().parents[2] / "layers" / "clickstream"

BOTO_FREE = [
    "clickstream.records",
    "clickstream.views",
    "clickstream.models",
    "clickstream.domain.rules",
    "clickstream.domain.numbering",
    "clickstream.domain.shards",
    "clickstream.domain.datasets.metrics",
]


# Only the export's judge step fits click models: every other function's cold start is spared numpy.
NUMPY_FREE = [
    "clickstream.service",
    "clickstream.domain.datasets.export",
    "clickstream.domain.judgments.counting",
]


def imported(module: str, packages: tuple[str, ...]) -> str:
    """Which modules of `packages` importing `module` loads, in a fresh interpreter."""
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r}))"
    result = subprocess.run(  # noqa: S603 - this interpreter, a probe built from the module names above
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(LAYER)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("module", BOTO_FREE)
def test_the_module_imports_without_boto3(module: str) -> None:
    loaded = imported(module, ("boto3", "botocore"))
    assert loaded == "[]", f"{module} pulls in {loaded}"


@pytest.mark.parametrize("module", NUMPY_FREE)
def test_the_export_path_imports_without_numpy(module: str) -> None:
    loaded = imported(module, ("numpy",))
    assert loaded == "[]", f"{module} pulls in {loaded}"
