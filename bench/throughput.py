"""Registrations per second through the local server (HTTP), several client threads at once."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import requests

from local.template import ROOT


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(base_url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local server exited with {process.returncode}")
        try:
            requests.get(f"{base_url}/openapi.json", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise TimeoutError("local server did not start")


def registrations(threads: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
    """`make run`'s server (embedded moto, SEED=0) in a child process; POST /session from `threads` threads."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "SEED": "0"}
    environment.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "local.server"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    try:
        _wait_until_serving(base_url, server)
        start_measuring = time.monotonic() + warmup_s
        stop = start_measuring + duration_s

        def client(worker: int) -> None:
            nonlocal failures
            with requests.Session() as session:
                n = 0
                while (now := time.monotonic()) < stop:
                    n += 1
                    body = {
                        "session_id": f"tp-{worker}-{n}",
                        "search_query": "red running shoes",
                        "search_results": [{"object_id": f"shoe-{rank}", "rank": float(rank)} for rank in range(10)],
                    }
                    started = time.perf_counter()
                    response = session.post(f"{base_url}/session", json=body, timeout=30)
                    elapsed = (time.perf_counter() - started) * 1000
                    if now < start_measuring:
                        continue
                    with lock:
                        if response.status_code == 200:
                            latencies.append(elapsed)
                        else:
                            failures += 1

        workers = [threading.Thread(target=client, args=(worker,)) for worker in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    ordered = sorted(latencies)
    return {
        "threads": threads,
        "duration_s": duration_s,
        "registrations": len(latencies),
        "failures": failures,
        "per_second": round(len(latencies) / duration_s, 1),
        "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 1) if ordered else None,
    }
