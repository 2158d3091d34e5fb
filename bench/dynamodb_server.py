"""The embedded moto DynamoDB in a process of its own (the bench's handlers must not share its GIL).

Prints `ENDPOINT <url>` and serves until its standard input closes.
"""

from __future__ import annotations

import sys

from local.dynamodb import EmbeddedAws


def main() -> None:
    server = EmbeddedAws().start()
    print(f"ENDPOINT {server.endpoint}", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
