"""A regression guard that is a count, not a timing: DynamoDB requests per API call.

The budget is the table in bench/RESULTS.md, which `make bench` measures with the same scenario
(bench/scenario.py). A change that makes a route issue more requests fails here until the table is
regenerated, so the rise shows in that file's diff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.scenario import RequestCounter, documented_counts, run_scenario
from clickstream import runtime
from local.template import ROOT
from tests.conftest import HttpResult

RESULTS = ROOT / "bench" / "RESULTS.md"


def test_the_documented_table_parses() -> None:
    documented = documented_counts(RESULTS.read_text(encoding="utf-8"))
    assert documented["register"] >= 1
    assert all(count >= 1 for count in documented.values())


def test_no_call_issues_more_dynamodb_requests_than_documented(
    invoke_http: Callable[[str, dict[str, Any]], HttpResult], tables: dict[str, str]
) -> None:
    documented = documented_counts(RESULTS.read_text(encoding="utf-8"))

    def send(function_id: str, event: dict[str, Any]) -> tuple[int, Any]:
        result = invoke_http(function_id, event)
        return result.status, result.body

    counter = RequestCounter(runtime.get_service().storage.client)
    try:
        cases = run_scenario(send, counter)
    finally:
        counter.close()

    undocumented = sorted(case.case_id for case in cases if case.case_id not in documented)
    assert not undocumented, f"cases missing from bench/RESULTS.md (run `make bench`): {undocumented}"
    over = [
        f"{case.case_id} ({case.route}): {case.requests} requests [{case.operations}], "
        f"documented {documented[case.case_id]}"
        for case in cases
        if case.requests > documented[case.case_id]
    ]
    assert not over, "more DynamoDB requests than bench/RESULTS.md documents:\n" + "\n".join(over)
