"""Check request and response bodies against OpenAI's published OpenAPI spec.

jsonschema alone is both too lax and too strict here (DESIGN §3): OpenAPI's ``discriminator``
is ignored, the spec's ``oneOf`` branches overlap (a valid body matches two branches and fails),
some schemas still use 3.0's ``nullable: true``, and request schemas allow unknown keys. So the
spec is rewritten once (``oneOf`` → ``anyOf``, ``nullable`` → a ``null`` branch) and request
top-level keys are checked against the endpoint's property list.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

#: Request schema per endpoint path.
REQUEST_SCHEMAS = {
    "/chat/completions": "CreateChatCompletionRequest",
    "/responses": "CreateResponse",
}

_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "tests" / "data" / "openai-openapi.yaml",
    Path(__file__).resolve().parents[3] / "shared" / "spec" / "openai-openapi.yaml",
)


def spec_path() -> Path:
    """The spec file: ``$HARNESS_OPENAPI_SPEC``, else the copy shipped with the repository."""
    env = os.environ.get("HARNESS_OPENAPI_SPEC")
    if env:
        return Path(env)
    for cand in _CANDIDATES:
        if cand.is_file():
            return cand
    raise FileNotFoundError("openai-openapi.yaml not found — set HARNESS_OPENAPI_SPEC to its path")


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "discriminator":
                continue
            if key in ("properties", "patternProperties", "$defs") and isinstance(value, dict):
                # names of properties are data, not keywords: rewrite only their schemas
                out[key] = {name: _rewrite(sub) for name, sub in value.items()}
            else:
                out["anyOf" if key == "oneOf" else key] = _rewrite(value)
        if out.pop("nullable", False):
            out = {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


@cache
def _schemas(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas: dict[str, Any] = _rewrite(doc["components"]["schemas"])
    return schemas


@cache
def _validator(path: str, name: str) -> Draft202012Validator:
    schemas = _schemas(path)
    if name not in schemas:
        raise KeyError(f"schema {name!r} is not in {path}")
    root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    return Draft202012Validator(root)


def schema_problems(name: str, obj: Any) -> list[str]:
    """Problems of ``obj`` against ``components.schemas[name]`` (empty list: valid)."""
    validator = _validator(str(spec_path()), name)
    problems = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path) or "<root>"
        problems.append(f"{name}: {where}: {err.message[:300]}")
    return problems


@cache
def stream_event_schemas() -> dict[str, str]:
    """Responses stream event ``type`` → its schema name, from the ``ResponseStreamEvent`` union."""
    schemas = _schemas(str(spec_path()))
    out: dict[str, str] = {}
    for member in schemas["ResponseStreamEvent"]["anyOf"]:
        name = member["$ref"].rsplit("/", 1)[-1]
        out[schemas[name]["properties"]["type"]["enum"][0]] = name
    return out


def top_level_properties(name: str) -> set[str]:
    """Every property name a schema declares at its top level (through allOf and $ref)."""
    schemas = _schemas(str(spec_path()))

    def collect(node: Any, seen: frozenset[str]) -> set[str]:
        if not isinstance(node, dict):
            return set()
        if "$ref" in node:
            ref = node["$ref"].rsplit("/", 1)[-1]
            return set() if ref in seen else collect(schemas[ref], seen | {ref})
        props = set(node.get("properties", {}))
        for sub in node.get("allOf", []):
            props |= collect(sub, seen)
        return props

    return collect(schemas[name], frozenset({name}))


def request_problems(endpoint: str, body: dict[str, Any]) -> list[str]:
    """Problems of a request body for ``/chat/completions`` or ``/responses``: schema + keys."""
    name = REQUEST_SCHEMAS[endpoint]
    known = top_level_properties(name)
    problems = [f"{name}: {key}: not a parameter of {endpoint}" for key in body if key not in known]
    return problems + schema_problems(name, body)
