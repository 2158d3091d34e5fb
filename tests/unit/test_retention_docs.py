"""What docs/operations.md tells a data-protection officer about retention is what template.yaml deploys:
each figure of its "Erasure and retention" section is read back from the template here, so a change to
either one without the other fails."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.template import ROOT, Intrinsic, load_template, resources_of_type

OPERATIONS = ROOT / "docs" / "operations.md"
FOURTEEN_DAYS_S = 14 * 86_400


def retention_section() -> str:
    """The section's text with its line breaks and indents as single spaces (a phrase may wrap)."""
    text = OPERATIONS.read_text(encoding="utf-8")
    start = text.index("## Erasure and retention")
    return " ".join(text[start : text.index("\n## ", start + 1)].split())


def lifecycle_rules(bucket: str) -> dict[str, dict[str, Any]]:
    properties = load_template()["Resources"][bucket]["Properties"]
    return {rule["Id"]: rule for rule in properties["LifecycleConfiguration"]["Rules"]}


def test_queue_messages_are_kept_the_14_days_the_docs_say() -> None:
    queues = resources_of_type(load_template(), "AWS::SQS::Queue")
    assert {"ImprovementTasksQueue", "ImprovementTasksDeadLetterQueue", "OutboxDeadLetterQueue"} <= set(queues)
    assert {queue["Properties"]["MessageRetentionPeriod"] for queue in queues.values()} == {FOURTEEN_DAYS_S}
    assert f"`MessageRetentionPeriod` {FOURTEEN_DAYS_S} s = 14 days" in retention_section()


def test_dataset_bucket_lifecycle_is_the_one_described() -> None:
    rules = lifecycle_rules("DatasetBucket")
    versions = rules["replaced-versions"]
    assert "Prefix" not in versions  # the whole bucket
    assert "Filter" not in versions
    assert versions["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert versions["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert (rules["export-work-files"]["Prefix"], rules["export-work-files"]["ExpirationInDays"]) == ("exports/", 30)
    expiring = {rule.get("Prefix") for rule in rules.values() if "ExpirationInDays" in rule}
    assert expiring == {"exports/", "sessions/", "judgments/"}  # reports/ and erasures/: no rule
    section = retention_section()
    for said in (
        "`NoncurrentVersionExpiration` 30 days, the whole bucket",
        "aborted 7 days after it started",
        "`exports/`: 30 days after being written (`export-work-files`)",
        "`reports/`: no rule, kept until deleted",
        "(lifecycle rules `retention`, `retention-judgments`)",
    ):
        assert said in section


def test_athena_results_expire_after_30_days_and_keep_no_versions() -> None:
    properties = load_template()["Resources"]["AthenaResultsBucket"]["Properties"]
    assert "VersioningConfiguration" not in properties
    assert lifecycle_rules("AthenaResultsBucket")["expire-results"]["ExpirationInDays"] == 30
    assert "30 days (`expire-results`)" in retention_section()


def test_every_log_group_keeps_log_retention_days() -> None:
    template = load_template()
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    groups = resources_of_type(template, "AWS::Logs::LogGroup")
    assert groups
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == Intrinsic("Ref", "LogRetentionDays"), name
    assert "`LogRetentionDays` (default 30)" in retention_section()


def test_every_table_has_point_in_time_recovery_for_the_default_35_days() -> None:
    tables = resources_of_type(load_template(), "AWS::DynamoDB::Table")
    assert "UserDatasetsTable" in tables
    for name, table in tables.items():
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
    assert "no `RecoveryPeriodInDays` set, so the default 35 days" in retention_section()


@pytest.mark.parametrize("table", ["BatchesTable", "UserDatasetsTable"])
def test_the_records_said_to_be_kept_have_no_time_to_live(table: str) -> None:
    assert "TimeToLiveSpecification" not in load_template()["Resources"][table]["Properties"]


def test_the_stack_archives_no_events() -> None:
    assert not resources_of_type(load_template(), "AWS::Events::Archive")
    assert "it defines no archive" in retention_section()


def test_the_erasure_deadline_and_its_logs_are_as_described() -> None:
    template = load_template()
    deadline = template["Parameters"]["ErasureDeadlineHours"]
    assert deadline["Default"] == 48
    hours = ", ".join(str(value) for value in deadline["AllowedValues"][:-1])
    assert f"(template parameter: {hours} or {deadline['AllowedValues'][-1]}; default 48)" in retention_section()
    seconds = template["Mappings"]["ErasureDeadlines"]
    assert {int(hours) * 3600 for hours in seconds} == {row["Seconds"] for row in seconds.values()}
    machine = template["Resources"]["ErasureStateMachine"]["Properties"]
    assert (machine["Logging"]["Level"], machine["Logging"]["IncludeExecutionData"]) == ("ERROR", False)
    assert "ErasureExecutionsFailedAlarm" in template["Resources"]


def test_the_rewrite_waits_for_an_export_as_described() -> None:
    text = re.sub(r"\$\{\w+\}", "0", (ROOT / "statemachines" / "erasure.asl.json").read_text(encoding="utf-8"))
    datasets = json.loads(text)["States"]["Datasets"]
    retries = datasets["ItemProcessor"]["States"]["Rewrite"]["Retry"]
    (waiting,) = [retry for retry in retries if retry["ErrorEquals"] == ["ExportNotReady"]]
    assert (waiting["IntervalSeconds"], waiting.get("BackoffRate", 2.0)) == (3600, 1)
    # The retries outlast the longest deadline: the step's own deadline check ends the wait, as the docs say.
    longest = max(load_template()["Parameters"]["ErasureDeadlineHours"]["AllowedValues"])
    assert waiting["MaxAttempts"] >= longest
    section = retention_section()
    assert "retries `ExportNotReady` every hour. An hour before the deadline it gives up instead" in section
