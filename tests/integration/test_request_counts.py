"""A regression guard that is a count, not a timing: DynamoDB requests per API call.

The budget is the table in bench/RESULTS.md, which `make bench` measures with the same scenario
(bench/request_counts.py). A change that makes a route issue more requests fails here until the table
is regenerated, so the rise shows in that file's diff.
"""

from __future__ import annotations

from bench.request_counts import RequestCounter, documented_counts, run_scenario, service_dynamodb_client
from local.template import ROOT
from tests.conftest import local_functions

RESULTS = ROOT / "bench" / "RESULTS.md"


def test_no_call_issues_more_dynamodb_requests_than_documented(tables: dict[str, str]) -> None:
    documented = documented_counts(RESULTS.read_text(encoding="utf-8"))
    counter = RequestCounter(service_dynamodb_client())
    try:
        cases = run_scenario(local_functions().call, counter)
    finally:
        counter.close()

    undocumented = sorted(case.case_id for case in cases if case.case_id not in documented)
    assert not undocumented, f"cases missing from bench/RESULTS.md (run `make bench`): {undocumented}"
    unmeasured = sorted(set(documented) - {case.case_id for case in cases})
    assert not unmeasured, f"documented cases the scenario no longer produces: {unmeasured}"
    over = [
        f"{case.case_id} ({case.route}): {case.requests} requests [{case.operations}], "
        f"documented {documented[case.case_id]}"
        for case in cases
        if case.requests > documented[case.case_id]
    ]
    assert not over, "more DynamoDB requests than bench/RESULTS.md documents:\n" + "\n".join(over)
