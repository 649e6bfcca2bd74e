"""Deterministic JSON values that validate against a JSON schema (structured outputs, tool args).

Covers what structured outputs and function parameters use: ``type`` (also lists with
``null``), ``properties``/``required``, ``items``/``minItems``/``maxItems``/``uniqueItems``,
``enum``/``const``, ``anyOf``/``oneOf``/``allOf``, local ``$ref`` (``#/$defs/…``,
``#/definitions/…``), string ``minLength``/``maxLength``/``format`` (date, date-time, email,
uri, uuid), number bounds and ``multipleOf``. ``pattern`` is not honoured (a generated string
may not match it). Values come from *hints* first — capitalised words and numbers of the user's
message — so "Extract: John is 30 and lives in NYC" fills ``name``, ``age`` and ``city`` with
John, 30 and NYC.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

_NAME_RE = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][A-Za-z]+|[A-Z]{2,})\b")
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_FILLER = ("alpha", "beta", "gamma", "delta", "omega", "sample", "value", "item", "note", "entry")
_MAX_DEPTH = 8


@dataclass(slots=True)
class Hints:
    """Words and numbers taken from the prompt, consumed in order by string/number fields."""

    names: list[str] = field(default_factory=list)
    numbers: list[float] = field(default_factory=list)
    _name_i: int = 0
    _num_i: int = 0

    @classmethod
    def from_text(cls, text: str) -> Hints:
        """Capitalised words (not sentence starts) and numbers of ``text``."""
        names = list(dict.fromkeys(m.group(1) for m in _NAME_RE.finditer(text)))
        numbers = [float(m.group(0)) for m in _NUMBER_RE.finditer(text)]
        return cls(names=names, numbers=numbers)

    def name(self) -> str | None:
        """The next unused word, or None."""
        if self._name_i < len(self.names):
            self._name_i += 1
            return self.names[self._name_i - 1]
        return None

    def number(self, lo: float, hi: float) -> float | None:
        """The next unused number within [lo, hi], or None."""
        while self._num_i < len(self.numbers):
            self._num_i += 1
            value = self.numbers[self._num_i - 1]
            if lo <= value <= hi:
                return value
        return None


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    if not ref.startswith("#"):
        return {}
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node if isinstance(node, dict) else {}


def _string(schema: dict[str, Any], rng: random.Random, hints: Hints) -> str:
    fmt = schema.get("format")
    if fmt == "date-time":
        return f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T12:00:00Z"
    if fmt == "date":
        return f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
    if fmt == "email":
        return f"{rng.choice(_FILLER)}@example.com"
    if fmt in ("uri", "url"):
        return f"https://example.com/{rng.choice(_FILLER)}"
    if fmt == "uuid":
        bits = [rng.getrandbits(n) for n in (32, 16, 12, 12, 48)]
        return f"{bits[0]:08x}-{bits[1]:04x}-4{bits[2]:03x}-a{bits[3]:03x}-{bits[4]:012x}"
    value = hints.name() or rng.choice(_FILLER)
    lo = int(schema.get("minLength", 0))
    hi = schema.get("maxLength")
    while len(value) < lo:
        value += " " + rng.choice(_FILLER)
    if hi is not None:
        value = value[: int(hi)]
    return value


def _number(schema: dict[str, Any], rng: random.Random, hints: Hints, integer: bool) -> float:
    lo = float(schema.get("minimum", -math.inf))
    hi = float(schema.get("maximum", math.inf))
    if "exclusiveMinimum" in schema:
        lo = max(lo, float(schema["exclusiveMinimum"]) + (1 if integer else 1e-6))
    if "exclusiveMaximum" in schema:
        hi = min(hi, float(schema["exclusiveMaximum"]) - (1 if integer else 1e-6))
    hinted = hints.number(lo, hi)
    if hinted is not None and (not integer or hinted == int(hinted)):
        value = hinted
    else:
        base_lo = (
            lo if math.isfinite(lo) else (0.0 if hi >= 0 or not math.isfinite(hi) else hi - 100)
        )
        base_hi = hi if math.isfinite(hi) else base_lo + 100
        value = rng.uniform(base_lo, base_hi)
    step = schema.get("multipleOf")
    if step:
        value = math.ceil(value / float(step)) * float(step)
        if value > hi:
            value -= float(step)
    if integer:
        value = float(math.ceil(value) if math.ceil(value) <= hi else math.floor(value))
    return value if not integer else int(value)


def value_for(
    schema: Any,
    rng: random.Random,
    hints: Hints,
    root: dict[str, Any] | None = None,
    depth: int = 0,
) -> Any:
    """A JSON value valid against ``schema`` (best effort for the keywords listed above)."""
    if not isinstance(schema, dict):
        return None
    root = schema if root is None else root
    if "$ref" in schema:
        target = _resolve(str(schema["$ref"]), root)
        return (
            value_for(
                {**target, **{k: v for k, v in schema.items() if k != "$ref"}},
                rng,
                hints,
                root,
                depth + 1,
            )
            if depth < _MAX_DEPTH
            else None
        )
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(list(schema["enum"]))
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            branches = [
                b for b in schema[key] if not (isinstance(b, dict) and b.get("type") == "null")
            ]
            return value_for(
                branches[0] if branches else schema[key][0], rng, hints, root, depth + 1
            )
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            sub = _resolve(sub["$ref"], root) if isinstance(sub, dict) and "$ref" in sub else sub
            if isinstance(sub, dict):
                merged.setdefault("properties", {}).update(sub.get("properties", {}))
                merged["required"] = [*merged.get("required", []), *sub.get("required", [])]
                for k, v in sub.items():
                    merged.setdefault(k, v)
        return value_for(merged, rng, hints, root, depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        if depth >= _MAX_DEPTH:
            return {}
        props = schema.get("properties", {})
        return {name: value_for(sub, rng, hints, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        lo = int(schema.get("minItems", 0))
        hi = int(schema.get("maxItems", max(lo, 3)))
        n = max(lo, min(hi, rng.randint(1, 3))) if depth < _MAX_DEPTH else lo
        items: list[Any] = []
        for _ in range(n * 4):
            if len(items) == n:
                break
            item = value_for(schema.get("items", {}), rng, hints, root, depth + 1)
            if not schema.get("uniqueItems") or item not in items:
                items.append(item)
        return items
    if kind == "string":
        return _string(schema, rng, hints)
    if kind == "integer":
        return _number(schema, rng, hints, integer=True)
    if kind == "number":
        return round(_number(schema, rng, hints, integer=False), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    return None
