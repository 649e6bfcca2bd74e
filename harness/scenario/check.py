"""Cross-field rules of a scenario, and pydantic errors turned into ``Found`` problems.

Each rule yields ``(field path, what is wrong, how to fix)``; :mod:`harness.scenario.load` adds the
file and line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.arms import Arm
from harness.errors import closest
from harness.scenario.models import (
    GATE_KEY_RE,
    GATE_METRICS,
    ImagePartSpec,
    PromptSpec,
    Scenario,
    TextPartSpec,
    ToolSpec,
    split_reason,
    type_name,
)
from harness.scenario.yaml_safe import Path_, show
from harness.translate.rules import message_problems, repeated_tools, tool_choice_problem

Found = tuple[Path_, str, str]  # (field path, what is wrong, how to fix)


def _texts(content: str | list[TextPartSpec | ImagePartSpec]) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [part.text for part in content if isinstance(part, TextPartSpec)]


def _strict_schema(schema: Any, where: Path_) -> Iterable[Found]:
    """OpenAI's strict-mode rules: every object closes ``additionalProperties`` and requires all
    of its properties (optional fields are written as a union with ``null``)."""
    if not isinstance(schema, dict):
        return
    is_object = schema.get("type") == "object" or "properties" in schema
    if is_object:
        if schema.get("additionalProperties") is not False:
            yield (
                where,
                "strict schemas need additionalProperties: false on every object",
                "add additionalProperties: false here",
            )
        props = schema.get("properties")
        if isinstance(props, dict):
            required = schema.get("required")
            missing = [k for k in props if not isinstance(required, list) or k not in required]
            if missing:
                yield (
                    where,
                    "strict schemas must list every property in required (missing: "
                    + ", ".join(missing)
                    + ")",
                    "add them to required; make optional fields nullable (type: [string, 'null'])",
                )
            for key, sub in props.items():
                yield from _strict_schema(sub, (*where, "properties", key))
    items = schema.get("items")
    if isinstance(items, dict):
        yield from _strict_schema(items, (*where, "items"))
    for keyword in ("anyOf", "allOf", "oneOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list):
            for index, branch in enumerate(branches):
                yield from _strict_schema(branch, (*where, keyword, index))
    for keyword in ("$defs", "definitions"):
        defs = schema.get(keyword)
        if isinstance(defs, dict):
            for key, sub in defs.items():
                yield from _strict_schema(sub, (*where, keyword, key))


def _json_schema(
    schema: dict[str, Any], where: Path_, *, strict: bool, what: str
) -> Iterable[Found]:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        yield (
            (*where, *exc.absolute_path),
            f"not a valid JSON Schema: {exc.message}",
            "fix the schema (JSON Schema 2020-12)",
        )
        return
    if schema.get("type") != "object":
        yield (
            where,
            f"{what} must be a JSON Schema with type: object at the top",
            "wrap the value in an object with properties",
        )
        return
    if strict:
        yield from _strict_schema(schema, where)


def _check_tools(tools: Sequence[ToolSpec], at: Path_) -> Iterable[Found]:
    for t, message, fix in repeated_tools([tool.name for tool in tools]):
        yield ((*at, "tools", t, "name"), message, fix)
    for t, tool in enumerate(tools):
        yield from _json_schema(
            tool.parameters, (*at, "tools", t, "parameters"), strict=tool.strict, what="parameters"
        )


def _check_output(owner: PromptSpec | Scenario, at: Path_) -> Iterable[Found]:
    if owner.output_schema is not None and owner.output is not None:
        yield (
            (*at, "output"),
            "both output_schema and output are set",
            "keep output_schema (a JSON schema) or output: json_object (any JSON)",
        )
    if owner.output_schema is not None:
        yield from _json_schema(
            owner.output_schema.json_schema,
            (*at, "output_schema", "schema"),
            strict=owner.output_schema.strict,
            what="output_schema.schema",
        )


def _check_messages(prompt: PromptSpec, at: Path_) -> Iterable[Found]:
    """A fixed history both APIs accept: roles, tool calls answered in order, a request after."""
    messages = prompt.messages or []
    for i, field, message, fix in message_problems(messages, ImagePartSpec):
        yield ((*at, "messages", i, *((field,) if field else ())), message, fix)
    if (
        messages
        and messages[-1].role not in ("user", "tool")
        and not messages[-1].tool_calls  # its unanswered calls are the problem
        and prompt.input is None
        and prompt.turns is None
    ):
        yield (
            (*at, "messages"),
            f"the fixed history ends with a message of role {messages[-1].role} and nothing "
            "follows",
            "end messages with a user or tool message, or add input: / turns:",
        )


def _check_prompt(sc: Scenario, index: int, prompt: PromptSpec) -> Iterable[Found]:
    at: Path_ = ("prompts", index)
    if prompt.input is None and prompt.turns is None and prompt.messages is None:
        yield (
            at,
            f"prompt {prompt.id} has neither input nor turns",
            'add input: "..." (one user turn), turns: [...] (several) or messages: [...]',
        )
    if prompt.input is not None and prompt.turns is not None:
        yield (
            (*at, "turns"),
            "both input and turns are set",
            "keep input for one user turn or turns for several",
        )
    if prompt.system is not None and prompt.developer is not None:
        yield (
            (*at, "developer"),
            "both system and developer are set",
            "keep one: both are the leading instruction message",
        )
    yield from _check_messages(prompt, at)

    tools = sc.tools_for(prompt)
    tool_names = [tool.name for tool in tools]
    if prompt.tools:
        yield from _check_tools(prompt.tools, at)
    choice = sc.tool_choice_for(prompt)
    choice_at: Path_ = (*at, "tool_choice") if prompt.tool_choice is not None else ("tool_choice",)
    wrong_choice = tool_choice_problem(choice, tool_names)
    if wrong_choice is not None:
        yield (choice_at, *wrong_choice)
    results = prompt.tool_results or {}
    if prompt.tool_results is not None and not tool_names:
        yield (
            (*at, "tool_results"),
            "tool_results without tools",
            "add the tools or remove tool_results",
        )
    elif tool_names:
        for name in results:
            if name not in tool_names:
                yield (
                    (*at, "tool_results", name),
                    f"{show(name)} is not a tool of this prompt",
                    "use one of: " + ", ".join(tool_names),
                )
        missing = [name for name in tool_names if name not in results]
        # A fixed history is measured on its one request; replies' calls are answered only
        # when canned results are given.
        answers = prompt.messages is None or prompt.tool_results is not None
        if missing and choice != "none" and answers:
            yield (
                (*at, "tool_results") if prompt.tool_results is not None else (*at, "tools"),
                "no canned result for "
                + ", ".join(missing)
                + " (the run answers every tool call with a canned result)",
                f"add tool_results: {{{missing[0]}: '<output text>'}}",
            )

    yield from _check_output(prompt, at)
    if sc.output_for(prompt) == "json_object":
        instructions = sc.instructions_for(prompt)
        texts = [instructions[1]] if instructions else []
        for msg in prompt.messages or []:
            if msg.content is not None and msg.role != "assistant":
                texts.extend(_texts(msg.content))
        for turn in prompt.user_turns:
            texts.extend(_texts(turn))
        if not any("json" in text.lower() for text in texts):
            yield (
                (*at, "output") if prompt.output is not None else ("output",),
                "output: json_object needs the word JSON in the "
                "messages (both APIs reject the request otherwise)",
                "mention JSON in the system prompt or the input",
            )


def _check_models(sc: Scenario) -> Iterable[Found]:
    from harness.translate.capabilities import not_served, unsupported_params
    from harness.translate.request import Params

    apis = {Arm.parse(arm).api for arm in sc.arms}
    for index, prompt in enumerate(sc.prompts):
        model = sc.model_for(prompt)
        model_at: Path_ = ("prompts", index, "model") if prompt.model else ("model",)
        for api in sorted(apis):
            unserved = not_served(model, api)
            if unserved is not None:
                yield (model_at, *split_reason(unserved))
        params = sc.params_for(prompt)

        def param_at(name: str, prompt: PromptSpec = prompt, index: int = index) -> Path_:
            own = prompt.params is not None and name in prompt.params.model_fields_set
            return ("prompts", index, "params", name) if own else ("defaults", name)

        for name, reason in unsupported_params(model, Params(**params)):
            message, fix = split_reason(reason)
            yield (param_at(name), message, fix)
        if params.get("parallel_tool_calls") is not None and not sc.tools_for(prompt):
            yield (
                param_at("parallel_tool_calls"),
                f"parallel_tool_calls applies to prompt "
                f"{prompt.id}, which has no tools (both APIs reject it)",
                "set it in the params of the prompts with tools",
            )


def _check_gates(sc: Scenario) -> Iterable[Found]:
    example = "e.g. responses_vs_chat.ttft_p50_ratio_max or chat.error_rate_max"
    for key, value in sc.gates.items():
        at: Path_ = ("gates", key)
        match = GATE_KEY_RE.match(key)
        if match is None:
            yield (
                at,
                f"gate {show(key)} is not <arm>_vs_<arm>.<metric>_max|_min or "
                "<arm>.<metric>_max|_min",
                example,
            )
            continue
        subject, metric = match["subject"], match["metric"]
        arms = subject.split("_vs_")
        scope = "pair" if len(arms) == 2 else "arm"
        if len(arms) > 2:
            yield (at, f"gate {show(key)} compares more than two arms", example)
            continue
        if metric not in GATE_METRICS:
            close = closest(metric, GATE_METRICS)
            known = ", ".join(m for m, s in GATE_METRICS.items() if s == scope)
            yield (
                at,
                f"unknown gate metric {show(metric)}",
                f"did you mean {close[0]}?" if close else f"use one of: {known}",
            )
            continue
        absent = [arm for arm in arms if arm not in sc.arms]
        if absent:
            yield (
                at,
                f"gate names arm {absent[0]}, which is not in arms",
                f"add {absent[0]} to arms or change the gate key",
            )
            continue
        if scope == "pair" and arms[0] == arms[1]:
            yield (
                at,
                "a gate compares an arm with itself",
                f"compare two arms, e.g. {arms[0]}#2_vs_{arms[0]} for an A/A check",
            )
            continue
        if GATE_METRICS[metric] != scope:
            right = (
                f"<arm>.{metric}" if GATE_METRICS[metric] == "arm" else f"<arm>_vs_<arm>.{metric}"
            )
            kind = "one arm" if GATE_METRICS[metric] == "arm" else "a comparison of two arms"
            yield (at, f"{metric} is a metric of {kind}", f"write {right}_{match['bound']}")
            continue
        if metric.endswith("_ratio") and value <= 0:
            yield (at, f"ratio gate {value} must be above 0", "use e.g. 1.5 for 'at most 1.5×'")
        elif metric in ("error_rate", "similarity_mean", "cache_hit_ratio") and not 0 <= value <= 1:
            yield (
                at,
                f"{metric} is a fraction; {value} is outside 0–1",
                "write a fraction such as 0.05",
            )
        elif metric.endswith("_ms") and value < 0:
            yield (at, f"{value} ms is negative", "write a duration in milliseconds")


def _check_background(sc: Scenario) -> Iterable[Found]:
    """``background: true`` needs ``store: true`` on every prompt (the arms other than the
    chained one default to ``store: false``)."""
    if not sc.background:
        return
    message = "background: true needs store: true (a background response is stored to be polled)"
    if sc.defaults.store is None:
        yield (
            ("background",),
            "needs store: true, which only the chained arm sends by default (a background "
            "response is stored to be polled)",
            "set defaults: {store: true}",
        )
    elif sc.defaults.store is False:
        yield (("defaults", "store"), message, "write store: true")
    for index, prompt in enumerate(sc.prompts):
        if prompt.params is not None and prompt.params.store is False:
            yield (("prompts", index, "params", "store"), message, "remove store: false")


def check_meaning(sc: Scenario) -> list[Found]:
    found: list[Found] = []
    for index, arm in enumerate(sc.arms):
        if arm in sc.arms[:index]:
            found.append((("arms", index), f"arm {arm} is listed twice", "list each arm once"))
        parsed = Arm.parse(arm)
        base = parsed.primary
        if parsed.is_replicate and base not in sc.arms:
            found.append(
                (
                    ("arms", index),
                    f"{arm} is an A/A replicate of {base}, which is not in arms",
                    f"add {base} to arms",
                )
            )
    if sc.system is not None and sc.developer is not None:
        found.append(
            (
                ("developer",),
                "both system and developer are set",
                "keep one: both are the leading instruction message",
            )
        )
    storing = [arm for arm in sc.arms if Arm.parse(arm).store]
    if storing:
        chained = next((a for a in storing if Arm.parse(a).chained), None)
        if chained is not None:
            fix = (
                "remove store: false (the chained arm sends store: true, the others store: "
                "false) or drop responses_chained from arms"
            )
            message = (
                "responses_chained needs store: true (previous_response_id reads stored responses)"
            )
        else:
            fix = (
                f"remove store: false (the +store variants send store: true, the other arms "
                f"false) or drop {storing[0]} from arms"
            )
            message = f"{storing[0]} sends store: true, which contradicts store: false"
        if sc.defaults.store is False:
            found.append((("defaults", "store"), message, fix))
        for index, prompt in enumerate(sc.prompts):
            if prompt.params is not None and prompt.params.store is False:
                found.append((("prompts", index, "params", "store"), message, fix))
    found.extend(_check_background(sc))
    if sc.tools:
        found.extend(_check_tools(sc.tools, ()))
    found.extend(_check_output(sc, ()))
    ids: dict[str, int] = {}
    for index, prompt in enumerate(sc.prompts):
        if prompt.id in ids:
            found.append(
                (
                    ("prompts", index, "id"),
                    f"prompt id {prompt.id} is used twice (also prompts[{ids[prompt.id]}])",
                    "give each prompt a unique id",
                )
            )
        ids.setdefault(prompt.id, index)
        found.extend(_check_prompt(sc, index, prompt))
    found.extend(_check_models(sc))
    for index, method in enumerate(sc.similarity.method):
        if method in sc.similarity.method[:index]:
            found.append(
                (
                    ("similarity", "method", index),
                    f"method {method} is listed twice",
                    "list each method once",
                )
            )
    found.extend(_check_gates(sc))
    unique: list[Found] = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


# --- pydantic errors → problems -----------------------------------------------------------------

_EXPECTED = {
    "string_type": ("a string", "write text (quote it if YAML reads it as a number or true)"),
    "int_type": ("a whole number", "write a whole number such as 5"),
    "float_type": ("a number", "write a number such as 0.5"),
    "bool_type": ("true or false", "write true or false"),
    "dict_type": ("a mapping", "write key: value pairs"),
    "model_type": ("a mapping", "write key: value pairs"),
    "model_attributes_type": ("a mapping", "write key: value pairs"),
    "list_type": ("a list", "write a YAML list (- item, or [a, b])"),
}

_MISSING_FIX = {
    "version": "add version: 1 at the top",
    "name": "add name: <slug>, e.g. name: support-bot",
    "model": "add model: <model id>, e.g. model: gpt-4.1-mini",
    "prompts": "add prompts: with at least one {id, input} entry",
    "id": "add id: <slug> to the prompt",
    "image_url": "add image_url: <https URL or data URL>",
    "schema": "add schema: <JSON Schema with type: object>",
}


def data_path(loc: Sequence[str | int], data: Any) -> Path_:
    """Follow pydantic's ``loc`` through the data, dropping union tags and other labels."""
    path: list[str | int] = []
    node = data
    for part in loc:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if present:
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not part.startswith(("~", "[")):
            path.append(part)  # a missing key
            node = None
    return tuple(path)


def describe_error(error: Any, path: Path_) -> list[Found]:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "unknown_keys":
        return [((*path, key), message, fix) for key, message, fix in ctx["found"]]
    if kind == "harness":
        return [(path, ctx["message"], ctx["fix"])]
    if kind == "missing":
        name = str(path[-1]) if path else "?"
        return [(path, f"required key {name} is missing", _MISSING_FIX.get(name, f"add {name}: …"))]
    if kind in _EXPECTED:
        expected, fix = _EXPECTED[kind]
        return [(path, f"expected {expected}, got {type_name(value)}", fix)]
    if kind == "literal_error":
        return [
            (
                path,
                f"{show(value)} is not allowed",
                f"use one of: {ctx.get('expected', '')}".replace("'", ""),
            )
        ]
    bounds = {
        "greater_than_equal": ("≥", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("≤", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        sign, key = bounds[kind]
        return [
            (
                path,
                f"{value} is out of range (must be {sign} {ctx.get(key)})",
                f"use a value {sign} {ctx.get(key)}",
            )
        ]
    if kind == "too_short":
        return [(path, "must not be empty", "add at least one entry")]
    if kind == "string_too_short":
        return [(path, "must not be empty", "write a value")]
    if kind in ("too_long", "string_too_long"):
        return [(path, "is too long", f"keep it to {ctx.get('max_length')} or fewer")]
    if kind == "finite_number":
        return [(path, f"{value} is not a finite number", "write a plain number")]
    return [(path, str(error.get("msg", "invalid value")), "see scenarios/README.md")]
