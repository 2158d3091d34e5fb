"""The CloudWatch dashboard of template.yaml (contract 16) shows what exists: its body parses as JSON once
substituted, every `${...}` names a resource of the template, the quality gauges are the very metrics the
export publishes (their names, namespace and dimensions taken from the EMF the service prints), and every
function, the HTTP API, each dead-letter queue and the export state machine have their health widgets."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import pytest

from clickstream.domain.announcements import QUALITY_METRICS
from clickstream.observability import PowertoolsTelemetry
from local.template import Intrinsic, load_template, resources_of_type

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
PSEUDO = {"AWS::Region", "AWS::StackName"}
Metric = tuple[str, str, tuple[tuple[str, str], ...]]  # namespace, name, dimensions


def dashboard_body() -> dict[str, Any]:
    template = load_template()
    (dashboard,) = resources_of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    assert isinstance(body, Intrinsic)
    assert body.name == "Fn::Sub"
    parsed: dict[str, Any] = json.loads(PLACEHOLDER.sub(lambda match: f"<{match.group(1)}>", body.value))
    return parsed


def metric_rows() -> list[tuple[Metric, str, dict[str, Any]]]:
    """Every metric of every widget: (namespace, name, dimensions), its stat, its options."""
    rows = []
    for widget in dashboard_body()["widgets"]:
        if widget["type"] != "metric":
            continue
        properties = widget["properties"]
        for row in properties["metrics"]:
            options = row[-1] if isinstance(row[-1], dict) else {}
            parts = row[:-1] if options else row
            namespace, name, *pairs = parts
            dimensions = tuple(zip(pairs[::2], pairs[1::2], strict=True))
            rows.append(((namespace, name, dimensions), options.get("stat", properties["stat"]), options))
    return rows


def referenced(value: str) -> str:
    """`<X>` or `<X.Attr>` -> X."""
    assert value.startswith("<"), value
    assert value.endswith(">"), value
    return value[1:-1].split(".", maxsplit=1)[0]


def test_every_substitution_names_a_resource_or_a_pseudo_parameter() -> None:
    template = load_template()
    body = resources_of_type(template, "AWS::CloudWatch::Dashboard")["Dashboard"]["Properties"]["DashboardBody"]
    for name in PLACEHOLDER.findall(body.value):
        assert name in PSEUDO or name.split(".")[0] in template["Resources"], name
        if "." in name:
            assert name.split(".")[1] == "QueueName", name  # the only attribute the metrics need


def published_quality_metrics(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> set[Metric]:
    """What the export's telemetry really prints (EMF), under the template's Powertools settings."""
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.setenv(name, variables[name])
    capsys.readouterr()
    PowertoolsTelemetry().gauges({name: (0.5, unit) for name, unit in QUALITY_METRICS.values()}, 1_795_348_800_000)
    (document,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    published = set()
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            dimensions = tuple((name, document[name]) for name in dimension_set)
            published |= {(directive["Namespace"], metric["Name"], dimensions) for metric in directive["Metrics"]}
    return published


def test_the_quality_gauges_are_the_metrics_the_export_publishes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    published = published_quality_metrics(monkeypatch, capsys)
    assert len(published) == len(QUALITY_METRICS)
    shown = {metric for metric, _, _ in metric_rows() if not metric[0].startswith("AWS/")}
    assert shown == published  # every gauge, by its exact name, namespace and dimensions; nothing else


def by_namespace() -> dict[str, list[tuple[Metric, str]]]:
    rows: dict[str, list[tuple[Metric, str]]] = defaultdict(list)
    for metric, stat, _ in metric_rows():
        rows[metric[0]].append((metric, stat))
    return rows


def test_every_function_has_errors_throttles_and_p99_duration() -> None:
    functions = set(resources_of_type(load_template(), "AWS::Serverless::Function"))
    shown = {
        (name, referenced(dict(dimensions)["FunctionName"]), stat)
        for (_, name, dimensions), stat in by_namespace()["AWS/Lambda"]
    }
    assert {function for _, function, _ in shown} == functions
    for function in functions:
        assert {("Errors", function, "Sum"), ("Throttles", function, "Sum"), ("Duration", function, "p99")} <= shown


def test_the_http_api_has_5xx_and_p99_latency() -> None:
    (api,) = resources_of_type(load_template(), "AWS::Serverless::HttpApi")
    shown = {
        (name, referenced(dict(dimensions)["ApiId"]), stat)
        for (_, name, dimensions), stat in by_namespace()["AWS/ApiGateway"]
    }
    assert {("5xx", api, "Sum"), ("Latency", api, "p99")} <= shown


def dead_letter_targets(node: Any) -> set[str]:
    """Queues named as a redrive target (deadLetterTargetArn) or an on-failure destination, anywhere."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("deadLetterTargetArn", "Destination") and isinstance(value, Intrinsic):
                found.add(str(value.value).split(".", maxsplit=1)[0])
            found |= dead_letter_targets(value)
    elif isinstance(node, list):
        for value in node:
            found |= dead_letter_targets(value)
    return found


def test_every_dead_letter_queue_shows_its_depth() -> None:
    template = load_template()
    dead_letter = dead_letter_targets(template["Resources"]) & set(resources_of_type(template, "AWS::SQS::Queue"))
    assert dead_letter == {"OutboxDeadLetterQueue", "ImprovementTasksDeadLetterQueue"}
    shown = {
        referenced(dict(dimensions)["QueueName"])
        for (_, name, dimensions), _ in by_namespace()["AWS/SQS"]
        if name == "ApproximateNumberOfMessagesVisible"
    }
    assert shown == dead_letter


def test_failed_exports_are_shown() -> None:
    machines = resources_of_type(load_template(), "AWS::Serverless::StateMachine")
    shown = {
        (name, referenced(dict(dimensions)["StateMachineArn"]))
        for (_, name, dimensions), _ in by_namespace()["AWS/States"]
    }
    assert {name for _, name in shown} <= set(machines)
    assert {("ExecutionsFailed", "ExportStateMachine"), ("ExecutionsTimedOut", "ExportStateMachine")} <= shown


def test_the_widgets_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for widget in dashboard_body()["widgets"]:
        assert widget["x"] + widget["width"] <= 24, widget
        cells = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not cells & taken, widget
        taken |= cells
