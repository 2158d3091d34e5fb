"""A stand-in for the X-Ray daemon: what the X-Ray SDK sends to AWS_XRAY_DAEMON_ADDRESS, received on a
local UDP port and kept as sent. Each datagram is `{"format":"json","version":1}` and a newline, then
one (sub)segment document."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

_HEADER = b'{"format":"json","version":1}\n'


class XRayDaemon:
    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._datagrams: list[bytes] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"{host}:{port}"

    def _receive(self) -> None:
        while not self._stopping.is_set():
            try:
                datagram = self._socket.recv(65535)
            except TimeoutError:
                continue
            with self._lock:
                self._datagrams.append(datagram)

    def datagrams(self) -> list[bytes]:
        with self._lock:
            return list(self._datagrams)

    def settled(self, quiet_s: float = 1.0, at_most_s: float = 15.0) -> list[bytes]:
        """Every datagram, once none has arrived for `quiet_s` (UDP: the last ones may still be on their way)."""
        deadline = time.monotonic() + at_most_s
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.datagrams())
            if count != seen:
                seen, quiet_since = count, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                break
            time.sleep(0.05)
        return self.datagrams()

    def documents(self) -> list[dict[str, Any]]:
        """Every (sub)segment received, parsed; a datagram without the daemon protocol's header fails."""
        documents = []
        for datagram in self.datagrams():
            header, _, document = datagram.partition(b"\n")
            if header + b"\n" != _HEADER:
                raise ValueError(f"not an X-Ray daemon datagram: {datagram[:80]!r}")
            documents.append(json.loads(document))
        return documents

    def clear(self) -> None:
        with self._lock:
            self._datagrams.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        self._socket.close()


def walk(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A (sub)segment and every subsegment nested in it."""
    found = [document]
    for child in document.get("subsegments", []):
        found += walk(child)
    return found
