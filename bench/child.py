"""A bench module run in a fresh process, so its CPU time and memory are its own; it answers on its last line."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from local.template import ROOT


def run_child(module: str, *arguments: str, environment: dict[str, str] | None = None) -> Any:
    """`python -m <module> <arguments>` from the repository's root; the JSON of its last line of output."""
    child = subprocess.run(  # noqa: S603 - this interpreter, a bench module
        [sys.executable, "-m", module, *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode:
        raise RuntimeError(f"{module} {' '.join(arguments)} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])
