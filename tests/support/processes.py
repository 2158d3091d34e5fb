"""Child processes for tests and benchmarks: local servers and DynamoDB endpoints on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess  # nosec B404 - starts only this project's own dev processes (local servers, dynalite)
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from local.template import ROOT

LOCAL_SERVER_COMMAND = [sys.executable, "-m", "local.server"]


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the child binds it a moment later; a clash is very unlikely)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def child_process(
    args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process with its output in `log_path`; terminated (then killed) on the way out."""
    with log_path.open("wb") as log:
        # An argument list from the caller (no shell), naming this project's own programs.
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603  # nosec B603
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], log_path: Path, what: str, timeout_s: float = 60
) -> None:
    """Poll `ready` until it holds; fail with the end of the child's log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout_s} s:\n{_tail(log_path)}")
        time.sleep(0.1)


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-3000:]


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def answers_http(url: str) -> bool:
    """Whether a local server at `url` is up (it serves its OpenAPI document)."""
    try:
        return requests.get(f"{url}/openapi.json", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def local_server_environment(port: int, endpoint: str | None = None) -> dict[str, str]:
    """The environment of `python -m local.server` without demo data; embedded moto unless `endpoint`."""
    environment = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "SEED": "0",
        "PYTHONUNBUFFERED": "1",
        "AWS_PORT": "0",  # its own embedded AWS on a free port, not make run's
    }
    environment.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    if endpoint is not None:
        environment["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    return environment


@contextmanager
def local_server(log_path: Path, endpoint: str | None = None, **settings: str) -> Iterator[str]:
    """One `python -m local.server` on a free port, as `make run` starts it (with `settings` in its environment);
    yields its URL once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**local_server_environment(port, endpoint), **settings}
    with child_process(LOCAL_SERVER_COMMAND, log_path, environment) as process:
        wait_until(lambda: answers_http(url), process, log_path, f"local server {url}")
        yield url


DYNALITE = ROOT / "tools" / "node_modules" / ".bin" / "dynalite"


@contextmanager
def dynalite_server(log_path: Path, timeout_s: float = 60) -> Iterator[str]:
    """An in-memory dynalite (DynamoDB without transactions, from npm) on a free port; yields its endpoint."""
    if not DYNALITE.exists():
        raise FileNotFoundError(f"{DYNALITE.relative_to(ROOT)} is missing: `cd tools && npm ci` installs it")
    port = free_port()
    with child_process([str(DYNALITE), "--host", "127.0.0.1", "--port", str(port)], log_path) as process:
        wait_until(lambda: accepts_connections(port), process, log_path, "dynalite", timeout_s)
        yield f"http://127.0.0.1:{port}"
