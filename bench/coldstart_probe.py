"""Run in a fresh interpreter by bench/coldstart.py: one cold start, timed phase by phase.

    python bench/coldstart_probe.py floor
    python bench/coldstart_probe.py function <function dir> <layer dir> <sample event file>

Prints one line, `RESULT import=<ms> init=<ms> first=<ms> second=<ms>`:
  import  importing the handler module (`app`), as Lambda's init phase does; floor: `import boto3`
  init    building what the first request needs beyond the import: the service and its DynamoDB
          client (`get_service()`); floor: creating one DynamoDB client
  first   the first request (the handler with a sample event; floor: one GetItem)
  second  the same request again, warm
Nothing else is imported before the timed import, so the figures are not flattered by a warm cache.
"""

import sys
import time


def _floor() -> tuple[float, float, float, float]:
    del sys.path[0]  # this folder
    sys.stderr.write("BENCH-IMPORT-START\n")
    started = time.perf_counter()
    import boto3

    imported = time.perf_counter()
    sys.stderr.write("BENCH-IMPORT-END\n")
    client = boto3.session.Session().client("dynamodb")
    built = time.perf_counter()
    key = {"session_id": {"S": "nobody"}}
    table = "SessionIdsTable"
    client.get_item(TableName=table, Key=key, ConsistentRead=True)
    first = time.perf_counter()
    client.get_item(TableName=table, Key=key, ConsistentRead=True)
    second = time.perf_counter()
    return imported - started, built - imported, first - built, second - first


def _function(function_dir: str, layer_dir: str, event_file: str) -> tuple[float, float, float, float]:
    # Lambda's path: the function's code (/var/task) first, then the layer (/opt/python); not this folder.
    sys.path[0:1] = [function_dir, layer_dir]
    sys.stderr.write("BENCH-IMPORT-START\n")
    started = time.perf_counter()
    import app  # type: ignore[import-not-found]

    imported = time.perf_counter()
    sys.stderr.write("BENCH-IMPORT-END\n")
    from clickstream.runtime import get_service

    get_service()
    built = time.perf_counter()

    import json

    with open(event_file, encoding="utf-8") as stream:
        event = json.load(stream)

    class Context:
        function_name = "bench"
        memory_limit_in_mb = 1024
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
        aws_request_id = "bench-request"
        log_group_name = "/aws/lambda/bench"
        log_stream_name = "bench"

        def get_remaining_time_in_millis(self) -> int:
            return 29_000

    handler = app.lambda_handler
    ready = time.perf_counter()
    handler(event, Context())
    first = time.perf_counter()
    handler(event, Context())
    second = time.perf_counter()
    return imported - started, built - imported, first - ready, second - first


def main() -> None:
    phases = _floor() if sys.argv[1] == "floor" else _function(sys.argv[2], sys.argv[3], sys.argv[4])
    names = ("import", "init", "first", "second")
    print("RESULT " + " ".join(f"{name}={value * 1000:.3f}" for name, value in zip(names, phases, strict=True)))


if __name__ == "__main__":
    main()
