"""The functions as `sam build` packages them, for this machine, and the runtime Lambda runs them in.

- /var/task: each function's CodeUri folder, as it is (`sam build` copies it; the functions have no
  requirements of their own).
- /opt: the layer, built by its own build (`make -C layers/clickstream build-ClickstreamLayer`, which
  `sam build` runs for `BuildMethod: makefile`), for this machine's platform instead of arm64.
- /var/runtime: what Lambda's managed python3.13 runtime provides around the code: the runtime interface
  client (awslambdaric, pinned) and its dependencies; /var/lang: a bare Python 3.13 (a venv of pyenv's
  3.13 without packages, so nothing of this machine's site-packages is importable).

Built once into a cache folder named after a digest of what goes in (the layer's sources, requirements,
Makefile, the platform, the client's version), then copied into fresh folders made read-only, as /var/task
and /opt are in Lambda.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import stat
import subprocess  # nosec B404 - pip and compileall, fixed arguments
from dataclasses import dataclass
from pathlib import Path

from local.template import ROOT, function_code, layer_paths, load_template, resources_of_type

AWSLAMBDARIC_VERSION = "4.2.2"
CACHE_DIR = ROOT / ".aws-sam" / "lambda-tier"  # .aws-sam is git-ignored, and `make clean` removes it


def python313() -> Path:
    """Python 3.13: $PYTHON313, else pyenv's newest 3.13, else python3.13 on PATH."""
    if os.environ.get("PYTHON313"):
        return Path(os.environ["PYTHON313"])
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(versions.glob("3.13*/bin/python3.13"))
    if found:
        return found[-1]
    on_path = shutil.which("python3.13")
    if on_path is None:
        raise RuntimeError("Python 3.13 not found (pyenv install 3.13, or set PYTHON313)")
    return Path(on_path)


def host_platform() -> str:
    """The pip platform of this machine, as the layer's Makefile names the deployed one (arm64)."""
    return f"manylinux2014_{platform.machine()}"


@dataclass(frozen=True)
class LambdaPackage:
    python: Path  # /var/lang/bin/python
    runtime_dir: Path  # /var/runtime
    layer_dir: Path  # /opt
    task_roots: dict[str, Path]  # function logical id -> its /var/task
    handlers: dict[str, str]  # function logical id -> its Handler


def _digest(layer_source: Path, interpreter: Path) -> str:
    digest = hashlib.sha256(f"{host_platform()} {AWSLAMBDARIC_VERSION} {interpreter.resolve()}".encode())
    for path in sorted(layer_source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(layer_source)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _run(*command: str | Path) -> None:
    subprocess.run([str(part) for part in command], check=True, capture_output=True, timeout=600)  # noqa: S603 # nosec B603


def _build(target: Path, layer_source: Path, interpreter: Path) -> None:
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    _run(
        "make", "-s", "-C", layer_source, "build-ClickstreamLayer",
        f"ARTIFACTS_DIR={building / 'opt'}", f"PLATFORM={host_platform()}", f"PYTHON={interpreter}",
    )  # fmt: skip
    _run(interpreter, "-m", "venv", "--without-pip", building / "lang")
    _run(
        interpreter, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
        "--target", building / "runtime", f"awslambdaric=={AWSLAMBDARIC_VERSION}",
    )  # fmt: skip
    for stale in target.parent.iterdir():  # earlier builds of other sources
        if stale != building:
            make_writable(stale)
            shutil.rmtree(stale, ignore_errors=True)
    building.rename(target)
    make_read_only(target)  # /var/lang and /var/runtime are read-only too


def make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def package_functions(work: Path) -> LambdaPackage:
    """Every function of template.yaml packaged under `work` (read-only), from the cached build."""
    template = load_template()
    layer_source = layer_paths(template)[0]
    interpreter = python313()
    built = CACHE_DIR / _digest(layer_source, interpreter)
    if not built.is_dir():
        built.parent.mkdir(parents=True, exist_ok=True)
        _build(built, layer_source, interpreter)
    shutil.copytree(built / "opt", work / "opt", symlinks=True)
    task_roots, handlers = {}, {}
    for function_id in sorted(resources_of_type(template, "AWS::Serverless::Function")):
        code_uri, handler = function_code(template, function_id)
        task_roots[function_id] = work / "task" / function_id
        handlers[function_id] = handler
        shutil.copytree(code_uri, task_roots[function_id], ignore=shutil.ignore_patterns("__pycache__"))
    for folder in (work / "opt", work / "task"):
        make_read_only(folder)
    return LambdaPackage(built / "lang" / "bin" / "python", built / "runtime", work / "opt", task_roots, handlers)
