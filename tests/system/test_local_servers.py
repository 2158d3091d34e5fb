"""Several `make run`s on one machine (contract 6): each needs only its own PORT. Its embedded AWS takes the
port that goes with PORT (4566 for 3000) or, when another program holds that one, a free port, and the
server prints where it is; servers sharing one DynamoDB endpoint each keep their own embedded AWS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from local.dynamodb import aws_port_for, listening_socket
from tests.support import new_session_body
from tests.support.processes import (
    LOCAL_SERVER_COMMAND,
    answers_http,
    child_process,
    free_port,
    local_server_environment,
    wait_until,
)

TIMEOUT = 30


@contextmanager
def make_run(log_path: Path, port: int, endpoint: str | None = None) -> Iterator[str]:
    """`python -m local.server` as `make run PORT=<port>` starts it: no AWS_PORT, so the server picks it."""
    environment = local_server_environment(port, endpoint)
    environment.pop("AWS_PORT")
    url = f"http://127.0.0.1:{port}"
    with child_process(LOCAL_SERVER_COMMAND, log_path, environment) as process:
        wait_until(lambda: answers_http(url), process, log_path, f"local server {url}")
        yield url


def embedded_aws(log_path: Path) -> str:
    [endpoint] = re.findall(r"^Embedded AWS \(moto: [^)]*\) on (\S+)$", log_path.read_text(), re.MULTILINE)
    return str(endpoint)


def register(url: str, session_id: str) -> dict[str, object]:
    answer = requests.post(f"{url}/session", json=new_session_body(session_id), timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    registered: dict[str, object] = answer.json()
    return registered


def found(url: str, session_id: str) -> bool:
    return requests.get(f"{url}/session", params={"session_id": session_id}, timeout=TIMEOUT).status_code == 200


def test_two_servers_on_two_ports_each_serve_with_their_own_aws_even_when_its_port_is_taken(tmp_path: Path) -> None:
    first_port, second_port = free_port(), free_port()
    # Another program holds the AWS port that goes with the second server's PORT (as 4566 was held by
    # another program): that server takes a free one instead of exiting.
    held_port = aws_port_for(second_port) or free_port()
    with (
        listening_socket("127.0.0.1", held_port),
        make_run(tmp_path / "first.log", first_port) as first,
        make_run(tmp_path / "second.log", second_port) as second,
    ):
        first_aws, second_aws = embedded_aws(tmp_path / "first.log"), embedded_aws(tmp_path / "second.log")
        assert first_aws != second_aws
        assert not second_aws.endswith(f":{held_port}")
        register(first, "only-on-the-first")
        register(second, "only-on-the-second")
        assert found(first, "only-on-the-first")
        assert not found(first, "only-on-the-second")
        assert found(second, "only-on-the-second")
        assert not found(second, "only-on-the-first")


def test_the_embedded_aws_port_follows_from_the_api_port() -> None:
    assert aws_port_for(3000) == 4566  # what `sam local`'s LocalAwsEndpoint and local/sam-env.json name
    assert aws_port_for(3001) == 4567
    assert aws_port_for(0) == 0  # any free port
    assert aws_port_for(65000) == 0  # beyond the last port: any free one


def test_servers_sharing_one_dynamodb_both_use_it_and_start_their_own_aws_for_the_rest(tmp_path: Path) -> None:
    with make_run(tmp_path / "first.log", free_port()) as first:
        shared = embedded_aws(tmp_path / "first.log")
        with make_run(tmp_path / "second.log", free_port(), endpoint=shared) as second:
            log = (tmp_path / "second.log").read_text()
            assert f"backed by DynamoDB at {shared}" in log
            assert embedded_aws(tmp_path / "second.log") != shared  # its own SQS and EventBridge
            on_second = register(second, "registered-on-the-second")
            on_first = register(first, "registered-on-the-first")
            assert found(first, "registered-on-the-second")
            assert found(second, "registered-on-the-first")
            assert on_first["batch_id"] == on_second["batch_id"]  # one collecting batch, one DynamoDB
