"""The OpenAPI spec checker itself (harness/spec.py).

Each rewrite is shown to matter: the raw spec, validated by plain jsonschema, rejects bodies the
API accepts (overlapping ``oneOf``, ``nullable``), and schema validation alone accepts unknown
top-level keys, which is why :func:`request_problems` checks them separately.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from harness.translate import spec
from harness.translate.spec import request_problems, schema_problems, top_level_properties

CHAT_BODY: dict[str, Any] = {
    "model": "gpt-4.1-mini",
    "messages": [{"role": "user", "content": "Hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}
RESPONSES_BODY: dict[str, Any] = {
    "model": "gpt-4.1-mini",
    "instructions": "Be brief.",
    "input": [{"role": "user", "content": "Hi"}],
    "store": False,
}
# Valid under both EasyInputMessage and Item → InputMessage: overlapping oneOf branches.
OVERLAPPING_ITEM = {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}


@pytest.fixture(scope="module")
def raw_schemas() -> dict[str, Any]:
    """The spec's schemas exactly as published, without the checker's rewrites."""
    with open(spec.spec_path(), encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas: dict[str, Any] = doc["components"]["schemas"]
    return schemas


def _raw_messages(schemas: dict[str, Any], name: str, obj: Any) -> list[str]:
    root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    return [err.message for err in Draft202012Validator(root).iter_errors(obj)]


# --------------------------------------------------------------------------- the rewrite


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (
            {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        ),
        ({"type": "integer", "nullable": True}, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        ({"type": "integer", "nullable": False}, {"type": "integer"}),
        (
            {"oneOf": [{"$ref": "#/a"}], "discriminator": {"propertyName": "type"}},
            {"anyOf": [{"$ref": "#/a"}]},
        ),
        (
            {"properties": {"x": {"type": "string", "nullable": True}}, "allOf": [{"oneOf": []}]},
            {
                "properties": {"x": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
                "allOf": [{"anyOf": []}],
            },
        ),
        # A property named like a keyword is data and must stay.
        (
            {"properties": {"discriminator": {"type": "string"}, "nullable": {"type": "boolean"}}},
            {"properties": {"discriminator": {"type": "string"}, "nullable": {"type": "boolean"}}},
        ),
    ],
)
def test_rewrite(node: dict[str, Any], expected: dict[str, Any]) -> None:
    assert spec._rewrite(node) == expected


def test_no_property_is_named_like_a_rewritten_keyword(raw_schemas: dict[str, Any]) -> None:
    clashes: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                clashes.extend(set(props) & {"oneOf", "nullable", "discriminator"})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(raw_schemas)
    assert clashes == []


def test_overlapping_one_of_is_accepted(raw_schemas: dict[str, Any]) -> None:
    assert any(
        "is valid under each of" in m
        for m in _raw_messages(raw_schemas, "InputItem", OVERLAPPING_ITEM)
    )
    assert schema_problems("InputItem", OVERLAPPING_ITEM) == []
    body = {**RESPONSES_BODY, "input": [OVERLAPPING_ITEM]}
    assert request_problems("/responses", body) == []


def test_nullable_is_accepted(raw_schemas: dict[str, Any]) -> None:
    body = {**CHAT_BODY, "max_completion_tokens": None}
    assert _raw_messages(raw_schemas, "CreateChatCompletionRequest", body) == [
        "None is not of type 'integer'"
    ]
    assert request_problems("/chat/completions", body) == []


# --------------------------------------------------------------------------- request_problems


@pytest.mark.parametrize(
    ("endpoint", "body"), [("/chat/completions", CHAT_BODY), ("/responses", RESPONSES_BODY)]
)
def test_valid_request_passes(endpoint: str, body: dict[str, Any]) -> None:
    assert request_problems(endpoint, body) == []


@pytest.mark.parametrize(
    ("endpoint", "body", "key"),
    [
        (
            "/responses",
            {**RESPONSES_BODY, "response_format": {"type": "json_object"}},
            "response_format",
        ),
        ("/responses", {**RESPONSES_BODY, "messages": []}, "messages"),
        ("/chat/completions", {**CHAT_BODY, "max_output_tokens": 64}, "max_output_tokens"),
        ("/chat/completions", {**CHAT_BODY, "instructions": "Be brief."}, "instructions"),
    ],
)
def test_unknown_top_level_key_is_caught(endpoint: str, body: dict[str, Any], key: str) -> None:
    name = spec.REQUEST_SCHEMAS[endpoint]
    assert schema_problems(name, body) == []  # request schemas allow unknown keys...
    assert request_problems(endpoint, body) == [  # ...so the key check is what catches them
        f"{name}: {key}: not a parameter of {endpoint}"
    ]


@pytest.mark.parametrize(
    ("endpoint", "body", "where"),
    [
        ("/chat/completions", {**CHAT_BODY, "temperature": 3}, "temperature"),
        ("/chat/completions", {"model": "gpt-4.1"}, "<root>"),
        ("/responses", {**RESPONSES_BODY, "max_output_tokens": 15}, "max_output_tokens"),
        ("/responses", {**RESPONSES_BODY, "store": "no"}, "store"),
    ],
)
def test_schema_problem_names_the_field(endpoint: str, body: dict[str, Any], where: str) -> None:
    problems = request_problems(endpoint, body)
    assert len(problems) == 1
    assert problems[0].startswith(f"{spec.REQUEST_SCHEMAS[endpoint]}: {where}: ")


def test_top_level_properties_follow_all_of_and_refs() -> None:
    props = top_level_properties("CreateResponse")
    # own properties, ResponseProperties, and ModelResponseProperties two $refs down
    assert {"input", "include", "previous_response_id", "tools", "metadata", "temperature"} <= props
    assert "messages" not in props and "response_format" not in props
    assert {"messages", "max_completion_tokens", "response_format"} <= top_level_properties(
        "CreateChatCompletionRequest"
    )


def test_unknown_schema_name_raises() -> None:
    with pytest.raises(KeyError, match="NoSuchSchema"):
        schema_problems("NoSuchSchema", {})


def test_spec_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = {
        "components": {
            "schemas": {
                "CreateResponse": {
                    "type": "object",
                    "required": ["model"],
                    "properties": {"model": {"type": "string", "nullable": True}},
                },
                "CreateChatCompletionRequest": {"type": "object", "properties": {}},
            }
        }
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny), encoding="utf-8")
    monkeypatch.setenv("HARNESS_OPENAPI_SPEC", str(path))
    assert spec.spec_path() == path
    assert request_problems("/responses", {"model": None}) == []
    assert request_problems("/responses", {"model": "x", "input": "Hi"}) == [
        "CreateResponse: input: not a parameter of /responses"
    ]
