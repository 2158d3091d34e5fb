"""The request-count budget in bench/RESULTS.md is readable, so the integration test can hold routes to it."""

from __future__ import annotations

import pytest

from bench.request_counts import Case, counts_table, documented_counts
from local.template import ROOT


def test_the_documented_table_parses() -> None:
    documented = documented_counts((ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8"))
    assert documented["register"] >= 1
    assert all(count >= 1 for count in documented.values())


def test_a_written_table_reads_back_as_written() -> None:
    cases = [Case("register", "POST /session", "new session", 3, "PutItem x2, UpdateItem")]
    assert documented_counts(f"intro\n{counts_table(cases)}\nafter") == {"register": 3}


def test_a_file_without_the_table_is_an_error() -> None:
    with pytest.raises(ValueError, match="markers"):
        documented_counts("no table here")
