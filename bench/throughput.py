"""Registrations per second through the local server (HTTP), several client threads at once."""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.processes import local_server


def registrations(threads: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
    """`make run`'s server (embedded moto, SEED=0) in a child process; POST /session from `threads` threads."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as logs, local_server(Path(logs) / "server.log") as base_url:
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
