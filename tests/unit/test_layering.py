"""The stored records, the views and the input models are plain Python: importing them for their types
must not pull in boto3 (a fresh interpreter, so nothing imported by other tests hides it)."""

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


@pytest.mark.parametrize("module", BOTO_FREE)
def test_the_module_imports_without_boto3(module: str) -> None:
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    result = subprocess.run(  # noqa: S603 - this interpreter, a probe built from the module names above
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(LAYER)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{module} pulls in {result.stdout.strip()}"
