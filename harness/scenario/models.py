"""Pydantic models of a scenario file (``extra="forbid"``, strict types) and their constants.

Shapes only: the cross-field rules live in :mod:`harness.scenario.check`, loading in
:mod:`harness.scenario.load`. Field validators raise errors that carry their own fix
(``PydanticCustomError("harness", …, {"message", "fix"})``); unknown keys carry a suggestion.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from harness.analysis.decide import DEFAULT_MARGINS, Margins
from harness.arms import Arm, ArmIdError
from harness.errors import closest
from harness.scenario.yaml_safe import LoadedYaml, Location, Path_, show
from harness.translate.convert import UNMAPPABLE_CHAT_PARAMS
from harness.translate.enums import EffortValue, ImageDetailValue, ServiceTierValue, VerbosityValue

SCENARIO_VERSION = 1

#: Gate metrics and whether they apply to a comparison (``a_vs_b.metric``) or to one arm
#: (``arm.metric``). The one list of gate metrics: :mod:`harness.gates.evaluate` computes these.
GATE_METRICS: dict[str, Literal["pair", "arm"]] = {
    "ttft_p50_ratio": "pair",
    "ttft_p95_ratio": "pair",
    "total_p50_ratio": "pair",
    "total_p95_ratio": "pair",
    "cold_ttft_ratio": "pair",
    "warm_ttft_ratio": "pair",
    "cost_ratio": "pair",
    "cache_hit_ratio_delta": "pair",
    "similarity_mean": "pair",
    "error_rate": "arm",
    "regression_pct": "arm",  # vs a baseline run: TTFT/total p50, cost, cache hits (harness gate)
    "ttft_p50_ms": "arm",
    "ttft_p95_ms": "arm",
    "total_p50_ms": "arm",
    "total_p95_ms": "arm",
    "cold_ttft_p50_ms": "arm",
    "cache_hit_ratio": "arm",
}
GATE_KEY_RE = re.compile(r"^(?P<subject>[^.]+)\.(?P<metric>[a-z0-9_]+?)_(?P<bound>max|min)$")

SimilarityMethod = Literal["text", "json", "tool_calls", "semantic"]
CacheIsolation = Literal["conversation", "arm", "none"]
ColdMode = Literal["new-prompt-prefix", "new-connection", "process-start"]
SIMILARITY_METHODS: tuple[str, ...] = get_args(SimilarityMethod)

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DATA_URL_RE = re.compile(r"^data:image/(png|jpeg|jpg|gif|webp);base64,(.*)$", re.DOTALL)

#: Fix hints for keys people carry over from one of the two APIs.
_PARAM_HINTS: dict[str, str] = {
    "max_tokens": "write max_output_tokens (sent as max_completion_tokens to chat and "
    "max_output_tokens to responses)",
    "max_completion_tokens": "write max_output_tokens (sent as max_completion_tokens to chat "
    "and max_output_tokens to responses)",
    "response_format": "use output_schema or output: json_object on the prompt",
    "text": "use verbosity in params, or output_schema / output on the prompt",
    "reasoning": "write reasoning_effort: low|medium|high",
    "instructions": "write system: or developer: at the top level or on the prompt",
    "tools": "move tools to the top level or the prompt",
    "tool_choice": "move tool_choice to the top level or the prompt",
    "model": "write model at the top level or on the prompt",
}


def _problem(message: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("harness", "{message}", {"message": message, "fix": fix})


def _must_match(pattern: re.Pattern[str], what: str, problem: str, fix: str) -> AfterValidator:
    """A check that a string field matches ``pattern``; the error names the field as ``what``."""

    def check(value: str) -> str:
        if not pattern.match(value):
            raise _problem(f"{what} {show(value)} {problem}", fix)
        return value

    return AfterValidator(check)


def _tool_name(what: str) -> AfterValidator:
    return _must_match(_TOOL_NAME_RE, what, "is not allowed", "use 1–64 letters, digits, _ or -")


def _slug(what: str) -> AfterValidator:
    return _must_match(
        _ID_RE,
        what,
        "is not a slug",
        "use letters, digits, '.', '_' or '-' (at most 64, no spaces or '/')",
    )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    _hints: ClassVar[dict[str, str]] = {}

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """Unknown keys, each with a suggestion (one error per model, listing every key), and
        the problems of the known keys with them, so one pass reports the whole file."""
        if not isinstance(data, dict):
            return handler(data)
        allowed = [f.alias or name for name, f in cls.model_fields.items()]
        unknown = [k for k in data if k not in allowed]
        if not unknown:
            return handler(data)
        found = []
        for key in unknown:
            message, fix = cls._unknown_key(str(key), allowed)
            found.append((str(key), message, fix))
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("unknown_keys", "unknown keys", {"found": found}),
                loc=(),
                input=data,
            )
        ]
        # "modle: did you mean model?" says it all: no second line for the missing model
        meant = {fix[len("did you mean ") : -1] for _, _, fix in found if "did you mean" in fix}
        try:
            handler({k: v for k, v in data.items() if k in allowed})
        except ValidationError as exc:
            errors += [
                InitErrorDetails(
                    type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")),
                    loc=e["loc"],
                    input=e["input"],
                )
                for e in exc.errors(include_url=False)
                if not (e["type"] == "missing" and e["loc"] in {(m,) for m in meant})
            ]
        raise ValidationError.from_exception_data(cls.__name__, errors)

    @classmethod
    def _unknown_key(cls, key: str, allowed: list[str]) -> tuple[str, str]:
        if key in cls._hints:
            return f"unknown key {show(key)}", cls._hints[key]
        close = closest(key, allowed, cutoff=0.75)
        if close:
            return f"unknown key {show(key)}", f"did you mean {close[0]}?"
        return f"unknown key {show(key)}", "remove it; allowed here: " + ", ".join(allowed)


class ScenarioParams(_Model):
    """Parameters both APIs understand; unset fields are not sent (or use the API default)."""

    _hints: ClassVar[dict[str, str]] = _PARAM_HINTS

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_output_tokens: int | None = None
    reasoning_effort: EffortValue | None = None
    verbosity: VerbosityValue | None = None
    store: bool | None = None
    prompt_cache_key: str | None = Field(None, min_length=1, max_length=256)
    metadata: dict[str, str] | None = None
    stream: bool = True
    parallel_tool_calls: bool | None = None
    service_tier: ServiceTierValue | None = None
    user: str | None = None

    @classmethod
    def _unknown_key(cls, key: str, allowed: list[str]) -> tuple[str, str]:
        if key not in cls._hints:
            reason = UNMAPPABLE_CHAT_PARAMS.get(key)
            if reason is not None:
                message, fix = split_reason(reason)
                return f"{key} is Chat-only: {message}", fix
        return super()._unknown_key(key, allowed)

    @field_validator("max_output_tokens")
    @classmethod
    def _min_tokens(cls, value: int | None) -> int | None:
        if value is not None and value < 16:
            raise _problem(
                f"max_output_tokens {value} is below 16, the Responses API minimum",
                "use 16 or more",
            )
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        if len(value) > 16:
            raise _problem(
                f"metadata has {len(value)} keys; both APIs allow at most 16",
                "keep 16 keys or fewer",
            )
        for key, item in value.items():
            if len(key) > 64 or len(item) > 512:
                raise _problem(
                    f"metadata {show(key)} is too long (keys ≤ 64, values ≤ 512 characters)",
                    "shorten it",
                )
        return value


class TextPartSpec(_Model):
    text: str = Field(min_length=1)


class ImagePartSpec(_Model):
    image_url: str
    detail: ImageDetailValue = "auto"

    _hints: ClassVar[dict[str, str]] = {
        "url": "write image_url: <https URL or data:image/png;base64,...>",
        "type": "remove it: a part is {text: ...} or {image_url: ..., detail: ...}",
    }

    @field_validator("image_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value.startswith(("https://", "http://")):
            return value
        match = _DATA_URL_RE.match(value)
        if match is None:
            raise _problem(
                f"image_url {show(value)} is not an http(s) URL or an image data URL",
                "use https://… or data:image/png;base64,…",
            )
        try:
            base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise _problem(
                "image_url data URL is not valid base64", "re-encode the image with base64"
            ) from None
        return value


def _part_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "text" in value:
            return "~text"
        if "image_url" in value:
            return "~image"
    return "~bad"


def _bad_part(value: Any) -> Any:
    if isinstance(value, str):
        raise _problem(
            "a list of content parts holds a plain string",
            "write {text: ...}; for several user turns use turns: instead of input:",
        )
    raise _problem(
        f"{show(value)} is not a content part",
        "write {text: ...} or {image_url: ..., detail: low|high|auto}",
    )


PartSpec = Annotated[
    Annotated[TextPartSpec, Tag("~text")]
    | Annotated[ImagePartSpec, Tag("~image")]
    | Annotated[Any, PlainValidator(_bad_part), Tag("~bad")],
    Discriminator(_part_kind),
]


def _content_kind(value: Any) -> str:
    if isinstance(value, str):
        return "~text"
    if isinstance(value, list):
        return "~parts"
    return "~bad"


def _bad_content(value: Any) -> Any:
    raise _problem(
        f"expected text or a list of parts, got {type_name(value)}",
        "write a string, or a list of {text: ...} / {image_url: ...} parts",
    )


def _nonempty_text(value: str) -> str:
    if not value.strip():
        raise _problem("text is empty", "write the text")
    return value


def _nonempty_parts(value: list[Any]) -> list[Any]:
    if not value:
        raise _problem("the list of parts is empty", "add at least one {text: ...} part")
    return value


Content = Annotated[
    Annotated[str, AfterValidator(_nonempty_text), Tag("~text")]
    | Annotated[list[PartSpec], AfterValidator(_nonempty_parts), Tag("~parts")]
    | Annotated[Any, PlainValidator(_bad_content), Tag("~bad")],
    Discriminator(_content_kind),
]
Instructions = Annotated[str, AfterValidator(_nonempty_text)]

_DEFAULT_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


class ToolSpec(_Model):
    """A function tool, written flat (Responses style); chat gets the nested form."""

    _hints: ClassVar[dict[str, str]] = {
        "type": "remove it: tools are functions, written flat {name, description, parameters, "
        "strict}",
        "function": "write name, description, parameters and strict directly on the tool "
        "(flat), not under function:",
    }

    name: Annotated[str, _tool_name("tool name")]
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: dict(_DEFAULT_PARAMETERS))
    strict: bool = False


class OutputSchemaSpec(_Model):
    """Structured output: chat ``response_format`` json_schema, responses ``text.format``."""

    _hints: ClassVar[dict[str, str]] = {
        "type": "remove it: output_schema is always a json_schema format; for JSON mode write "
        "output: json_object on the prompt instead",
        "json_schema": "write name, schema and strict directly under output_schema (flat)",
    }

    name: Annotated[str, _tool_name("schema name")]
    json_schema: dict[str, Any] = Field(alias="schema")
    strict: bool = True
    description: str | None = None


class ToolCallSpec(_Model):
    """A tool call in a fixed history, written flat: ``{id, name, arguments}``."""

    _hints: ClassVar[dict[str, str]] = {
        "type": "remove it: tool calls are function calls, written flat {id, name, arguments}",
        "function": "write name and arguments directly on the call (flat), not under function:",
        "call_id": "write id:",
    }

    id: str = Field(min_length=1)
    name: Annotated[str, _tool_name("tool name")]
    arguments: str

    @field_validator("arguments", mode="before")
    @classmethod
    def _dump_arguments(cls, value: Any) -> Any:
        # Arguments may be written as YAML; what is sent is their JSON text.
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return value


MessageRole = Literal["system", "developer", "user", "assistant", "tool"]


class MessageSpec(_Model):
    """One message of a fixed conversation prefix, sent verbatim to every arm."""

    _hints: ClassVar[dict[str, str]] = {
        "name": "remove it: Responses input messages have no participant name",
        "function_call": "write tool_calls: [{id, name, arguments}]",
        "refusal": "remove it: a refusal has no Responses input form",
    }

    role: MessageRole
    content: Content | None = None
    tool_calls: list[ToolCallSpec] | None = Field(None, min_length=1)
    tool_call_id: str | None = Field(None, min_length=1)


def _param_or_hint(key: str, where: str) -> tuple[str, str] | None:
    """Advice for a parameter written outside ``params``/``defaults``."""
    if key in ScenarioParams.model_fields:
        return f"{key} is a parameter", f"move it under {where}:"
    reason = UNMAPPABLE_CHAT_PARAMS.get(key)
    if reason is not None:
        message, fix = split_reason(reason)
        return f"{key} is Chat-only: {message}", fix
    return None


OutputMode = Literal["json_object", "text"]


class PromptSpec(_Model):
    """One prompt: a single ``input`` or several ``turns``, sent to every arm."""

    _hints: ClassVar[dict[str, str]] = {
        "prompt": "write input: (one user turn) or turns: (several)",
        "text": "write input: (one user turn) or turns: (several)",
        "user": "write input: (one user turn) or turns: (several)",
        "response_format": "use output_schema: {name, schema, strict} or output: json_object",
        "instructions": "write system: or developer:",
        "expected": "write reference: (a known-good answer, compared with each arm's reply)",
        "count": "write weight: (how many times the prompt occurs in the traffic)",
    }

    id: Annotated[str, _slug("prompt id")]
    model: str | None = Field(None, min_length=1)
    params: ScenarioParams | None = None
    system: Instructions | None = None
    developer: Instructions | None = None
    messages: list[MessageSpec] | None = Field(None, min_length=1)
    input: Content | None = None
    turns: list[Content] | None = Field(None, min_length=1)
    #: ``[]`` sends no tools, overriding the scenario's shared ``tools``.
    tools: list[ToolSpec] | None = None
    tool_choice: str | None = None
    tool_results: dict[str, str] | None = None
    output_schema: OutputSchemaSpec | None = None
    #: ``text`` sends no output format, overriding the scenario's shared one.
    output: OutputMode | None = None
    reference: Instructions | None = None
    weight: int = Field(1, ge=1, le=1_000_000_000)

    @classmethod
    def _unknown_key(cls, key: str, allowed: list[str]) -> tuple[str, str]:
        return _param_or_hint(key, "params") or super()._unknown_key(key, allowed)

    @field_validator("tool_results", mode="before")
    @classmethod
    def _dump_results(cls, value: Any) -> Any:
        # A canned result may be written as YAML; the tool output sent is its JSON text.
        if isinstance(value, dict):
            return {
                k: json.dumps(v, separators=(",", ":"), ensure_ascii=False)
                if isinstance(v, dict | list)
                else v
                for k, v in value.items()
            }
        return value

    @property
    def user_turns(self) -> list[str | list[TextPartSpec | ImagePartSpec]]:
        """The user messages in order (``input`` is one turn)."""
        if self.turns is not None:
            return list(self.turns)
        return [self.input] if self.input is not None else []


def _default_methods() -> list[SimilarityMethod]:
    return ["text"]


class SimilaritySpec(_Model):
    """Kinds of similarity to report. Text, JSON and tool-call agreement are measured wherever
    they apply; ``semantic`` (offline embeddings, :mod:`harness.analysis.semantic`) is opt-in."""

    method: list[SimilarityMethod] = Field(default_factory=_default_methods, min_length=1)

    @field_validator("method", mode="before")
    @classmethod
    def _one_method(cls, value: Any) -> Any:
        # `method: semantic` reads as the one-item list it means
        return [value] if isinstance(value, str) else value


class MarginsSpec(_Model):
    """Equivalence margins (docs/statistics.md): a difference inside them is "no real
    difference"; a verdict of better/worse needs the whole interval beyond them."""

    latency_pct: float = Field(DEFAULT_MARGINS.latency_pct, ge=0, lt=100)
    cost_pct: float = Field(DEFAULT_MARGINS.cost_pct, ge=0, lt=100)
    tokens_pct: float = Field(DEFAULT_MARGINS.tokens_pct, ge=0, lt=100)
    cache_points: float = Field(DEFAULT_MARGINS.cache_points, ge=0, le=100)
    error_rate_points: float = Field(DEFAULT_MARGINS.error_rate_points, ge=0, le=100)
    similarity: float = Field(DEFAULT_MARGINS.similarity, ge=0, le=1)

    def to_margins(self) -> Margins:
        return Margins(**self.model_dump())


def _arm(value: str) -> str:
    try:
        Arm.parse(value, shown=show(value))
    except ArmIdError as exc:
        raise _problem(exc.message, exc.fix) from None
    return value


class Scenario(_Model):
    """A scenario file. Load it with :func:`load_scenario`."""

    _hints: ClassVar[dict[str, str]] = {
        "params": "write defaults: (per-prompt overrides go in the prompt's params:)",
        "instructions": "write system: or developer:",
        "prompt": "write prompts: (a list)",
        "arm": "write arms: (a list)",
        "gate": "write gates: (a mapping)",
        "seed": "pass --seed to harness run/plan (the seed is a run setting, and the "
        "Responses API has no seed parameter)",
    }

    version: int
    name: Annotated[str, _slug("name")]
    description: str | None = None
    model: str = Field(min_length=1)
    defaults: ScenarioParams = Field(default_factory=ScenarioParams)
    arms: list[Annotated[str, AfterValidator(_arm)]] = Field(
        default_factory=lambda: ["chat", "responses"], min_length=1
    )
    cache_isolation: CacheIsolation = "conversation"
    repeats: int = Field(5, ge=1, le=10_000)
    warmup: int = Field(0, ge=0, le=100)
    cold: ColdMode = "new-prompt-prefix"
    system: Instructions | None = None
    developer: Instructions | None = None
    #: Shared by every prompt that does not set its own.
    tools: list[ToolSpec] | None = Field(None, min_length=1)
    tool_choice: str | None = None
    output_schema: OutputSchemaSpec | None = None
    output: OutputMode | None = None
    prompts: list[PromptSpec] = Field(min_length=1)
    similarity: SimilaritySpec = Field(default_factory=SimilaritySpec)
    margins: MarginsSpec = Field(default_factory=MarginsSpec)
    gates: dict[str, float] = Field(default_factory=dict)
    #: Responses arms send ``background: true`` and follow each response to its final status
    #: (needs ``store: true``); chat arms have no background mode and send as usual.
    background: bool = False
    background_poll_ms: float = Field(250.0, gt=0, le=60_000)

    #: The loaded YAML (lines, files read, hash); set by
    #: :func:`harness.scenario.load.load_scenario`.
    _loaded: LoadedYaml | None = PrivateAttr(None)

    @classmethod
    def _unknown_key(cls, key: str, allowed: list[str]) -> tuple[str, str]:
        if key not in cls._hints:
            found = _param_or_hint(key, "defaults")
            if found is not None:
                return found
        return super()._unknown_key(key, allowed)

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != SCENARIO_VERSION:
            raise _problem(
                f"unsupported scenario version {value}",
                f"write version: {SCENARIO_VERSION} (the only version this harness reads)",
            )
        return value

    @property
    def source(self) -> Path | None:
        """The file this scenario was loaded from."""
        return self._loaded.files[0] if self._loaded and self._loaded.files else None

    @property
    def sha256(self) -> str:
        """Hash of the scenario file and every included file (for run metadata)."""
        return self._loaded.sha256 if self._loaded else ""

    @property
    def files(self) -> tuple[Path, ...]:
        """The scenario file followed by every file it includes."""
        return tuple(self._loaded.files) if self._loaded else ()

    def location(self, path: Path_) -> Location:
        """Where a field path is written (its nearest written ancestor when it is unset)."""
        if self._loaded is None:
            return Location("?", 1)
        return self._loaded.location(path)

    def model_for(self, prompt: PromptSpec) -> str:
        return prompt.model or self.model

    def params_for(self, prompt: PromptSpec) -> dict[str, Any]:
        """Defaults overridden by the prompt's params; only keys the file sets (plus stream)."""
        merged = self.defaults.model_dump(exclude_unset=True)
        if prompt.params is not None:
            merged.update(prompt.params.model_dump(exclude_unset=True))
        merged.setdefault("stream", True)
        return merged

    def tools_for(self, prompt: PromptSpec) -> list[ToolSpec]:
        """The prompt's tools, else the shared ones (a prompt's ``tools: []`` means none)."""
        if prompt.tools is not None:
            return list(prompt.tools)
        return list(self.tools or [])

    def tool_choice_for(self, prompt: PromptSpec) -> str | None:
        """The prompt's tool_choice, else the shared one when the prompt uses shared tools."""
        if prompt.tool_choice is not None or prompt.tools is not None:
            return prompt.tool_choice
        return self.tool_choice

    def output_for(self, prompt: PromptSpec) -> OutputSchemaSpec | OutputMode | None:
        """The prompt's output format (schema, ``json_object`` or ``text``), else the shared one."""
        for owner in (prompt, self):
            if owner.output_schema is not None:
                return owner.output_schema
            if owner.output is not None:
                return owner.output
        return None

    def instructions_for(
        self, prompt: PromptSpec
    ) -> tuple[Literal["system", "developer"], str] | None:
        """The leading system/developer message of a prompt (the prompt's own wins)."""
        for owner in (prompt, self):
            if owner.system is not None:
                return "system", owner.system
            if owner.developer is not None:
                return "developer", owner.developer
        return None


def split_reason(reason: str) -> tuple[str, str]:
    """Split ``"what is wrong — how to fix"`` (or ``"…; fix"``) into its two halves."""
    if " — " in reason:
        message, _, fix = reason.partition(" — ")
    elif "; " in reason:
        message, _, fix = reason.rpartition("; ")
    else:
        return reason.rstrip("."), "see scenarios/README.md"
    return message.strip().rstrip("."), fix.strip().rstrip(".")


def type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{value} (a number)"
    if isinstance(value, str):
        return f"{show(value, 30)!r} (a string)" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
