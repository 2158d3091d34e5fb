"""Reads `template.yaml`, the one source of truth for routes, functions, environment and tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"


@dataclass(frozen=True)
class Intrinsic:
    """A CloudFormation intrinsic function (`!Ref X`, `!GetAtt X.Arn`, `!Sub ...`), kept unevaluated."""

    name: str
    value: Any


class _TemplateLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short-form tags."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Intrinsic:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    return Intrinsic(name, value)


_TemplateLoader.add_multi_constructor("!", _intrinsic)


@cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        # _TemplateLoader is a SafeLoader that only adds the intrinsic-function tags (hence noqa and nosec).
        document: dict[str, Any] = yaml.load(stream, Loader=_TemplateLoader)  # noqa: S506 # nosec B506
    return document


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    function_id: str
    code_uri: Path
    handler: str  # "module.attribute"


def http_routes(template: dict[str, Any]) -> list[HttpRoute]:
    routes = []
    for function_id, function in resources_of_type(template, "AWS::Serverless::Function").items():
        properties = function["Properties"]
        for event in properties.get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            routes.append(
                HttpRoute(
                    method=event["Properties"]["Method"].upper(),
                    path=event["Properties"]["Path"],
                    function_id=function_id,
                    code_uri=ROOT / properties["CodeUri"],
                    handler=properties["Handler"],
                )
            )
    return routes


def function_code(template: dict[str, Any], function_id: str) -> tuple[Path, str]:
    properties = template["Resources"][function_id]["Properties"]
    return ROOT / properties["CodeUri"], properties["Handler"]


def layer_paths(template: dict[str, Any]) -> list[Path]:
    """Source folders of the layers, which Lambda puts on sys.path."""
    layers = resources_of_type(template, "AWS::Serverless::LayerVersion")
    return [ROOT / layer["Properties"]["ContentUri"] for layer in layers.values()]


_NO_VALUE = Intrinsic("Ref", "AWS::NoValue")


def _condition(template: dict[str, Any], condition: Any, parameters: Mapping[str, str]) -> bool:
    """A condition of the template, with parameters at `parameters` or their defaults (Fn::Equals, Fn::Not,
    named ones)."""
    if isinstance(condition, str):
        return _condition(template, template["Conditions"][condition], parameters)
    if isinstance(condition, Intrinsic) and condition.name == "Fn::Not":
        return not _condition(template, condition.value[0], parameters)
    if isinstance(condition, Intrinsic) and condition.name == "Fn::Equals":
        left, right = (_parameter_value(template, side, parameters) for side in condition.value)
        return str(left) == str(right)
    if isinstance(condition, Intrinsic) and condition.name == "Condition":
        return _condition(template, condition.value, parameters)
    raise ValueError(f"cannot evaluate condition {condition!r} locally")


def _parameter_value(template: dict[str, Any], value: Any, parameters: Mapping[str, str]) -> Any:
    if isinstance(value, Intrinsic) and value.name == "Ref":
        return parameters.get(value.value, template["Parameters"][value.value]["Default"])
    return value


def with_defaults(template: dict[str, Any], value: Any, parameters: Mapping[str, str] | None = None) -> Any:
    """`value` with every `Fn::If` decided as the template's parameters decide it: `parameters` where given,
    their defaults otherwise (AWS::NoValue leaves the member out)."""
    given = parameters or {}
    if isinstance(value, Intrinsic) and value.name == "Fn::If":
        condition, when_true, when_false = value.value
        chosen = when_true if _condition(template, condition, given) else when_false
        return with_defaults(template, chosen, given)
    if isinstance(value, list):
        decided = [with_defaults(template, member, given) for member in value]
        return [member for member in decided if member != _NO_VALUE]
    if isinstance(value, dict):
        fields = {key: with_defaults(template, member, given) for key, member in value.items()}
        return {key: member for key, member in fields.items() if member != _NO_VALUE}
    return value


def table_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`CreateTable` arguments for each table, from its resource properties (without TableName)."""
    definitions = {}
    for logical_id, table in resources_of_type(template, "AWS::DynamoDB::Table").items():
        properties = with_defaults(template, table["Properties"])
        arguments: dict[str, Any] = {
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for index_kind in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
            if index_kind in properties:
                arguments[index_kind] = properties[index_kind]
        if "StreamSpecification" in properties:  # CreateTable names the stream's switch, CloudFormation does not
            arguments["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        definitions[logical_id] = arguments
    return definitions


def function_environment(template: dict[str, Any], function_id: str, physical_names: dict[str, str]) -> dict[str, str]:
    """The function's environment variables, with `!Ref`s resolved to local names or parameter defaults."""
    variables: dict[str, Any] = dict(
        with_defaults(
            template, template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        )
    )
    own = template["Resources"][function_id]["Properties"].get("Environment", {}).get("Variables", {})
    variables.update(with_defaults(template, own))
    parameters = template.get("Parameters", {})
    resolved = {}
    for name, value in variables.items():
        if not isinstance(value, Intrinsic):
            resolved[name] = str(value)
        elif value.name == "Ref" and value.value in physical_names:
            resolved[name] = physical_names[value.value]
        elif value.name == "Ref" and value.value in parameters:
            resolved[name] = str(parameters[value.value]["Default"])
        else:
            raise ValueError(f"{function_id}: cannot resolve {value.name} {value.value!r} for {name} locally")
    return resolved
