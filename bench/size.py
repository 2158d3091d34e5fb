"""Artifact sizes after `make build` (sam build): each function and the layer, unzipped and zipped."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from local.template import ROOT

BUILD_DIR = ROOT / ".aws-sam" / "build"


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def _zipped_bytes(folder: Path, files: list[Path]) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder))
    return buffer.tell()


def _measure(folder: Path) -> dict[str, Any]:
    files = _files(folder)
    return {
        "files": len(files),
        "bytes": sum(path.stat().st_size for path in files),
        "zipped_bytes": _zipped_bytes(folder, files),
        "pyc_files": sum(1 for path in files if path.suffix == ".pyc"),
    }


def _largest_packages(layer: Path, count: int = 6) -> dict[str, int]:
    site = layer / "python"
    sizes: Counter[str] = Counter()
    for path in _files(site):
        top = path.relative_to(site).parts[0]
        if top.endswith((".dist-info", ".data")):
            top = "(package metadata)"
        sizes[top] += path.stat().st_size
    return dict(sizes.most_common(count))


def build_sizes(run_build: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = {"built": False}
    if run_build:
        completed = subprocess.run(
            ["make", "--no-print-directory", "build"],  # noqa: S607 - make from PATH, as the developer runs it
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        )
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).strip().splitlines()
            result["error"] = "\n".join(output[-15:])
            return result
    if not BUILD_DIR.is_dir():
        result["error"] = "no .aws-sam/build (run `make build`)"
        return result
    result["built"] = True
    result["artifacts"] = {folder.name: _measure(folder) for folder in sorted(BUILD_DIR.iterdir()) if folder.is_dir()}
    layers = [folder for folder in BUILD_DIR.iterdir() if (folder / "python").is_dir()]
    if layers:
        result["layer_packages"] = _largest_packages(layers[0])
    return result
