"""The neutral request: one API-independent description of a call, translated per arm.

A scenario prompt becomes one :class:`NeutralRequest` per turn; :mod:`harness.translate.convert`
turns it into Chat Completions or Responses keyword arguments. Values only known at run time
(assistant replies, tool call ids, response ids) are filled in by the runner; `harness plan`
shows them as placeholders such as ``"<response of turn 1>"``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.translate.enums import (
    EffortValue,
    ImageDetailValue,
    ServiceTierValue,
    VerbosityValue,
)

Role = Literal["system", "developer", "user", "assistant", "tool"]
# The values come from the openai SDK's Literal types (harness.translate.enums), so they follow
# SDK upgrades instead of lagging behind them.
ImageDetail = ImageDetailValue
ReasoningEffort = EffortValue
Verbosity = VerbosityValue
ServiceTier = ServiceTierValue


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextPart(_Frozen):
    type: Literal["text"] = "text"
    text: str


class ImagePart(_Frozen):
    """An image by URL or data URL; ``detail`` is always sent (Responses requires it)."""

    type: Literal["image"] = "image"
    url: str
    detail: ImageDetail = "auto"


Part = TextPart | ImagePart


class ToolCall(_Frozen):
    """A function call made by the assistant; ``arguments`` is the JSON string the model wrote."""

    id: str
    name: str
    arguments: str


class Message(_Frozen):
    """One chat-style message.

    ``reasoning_items`` carries opaque Responses reasoning items (with encrypted content) that a
    stateless ``store: false`` Responses arm must send back; Chat ignores them.
    """

    role: Role
    content: str | list[Part] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    reasoning_items: tuple[dict[str, Any], ...] = ()


class FunctionTool(_Frozen):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False


class JsonSchemaFormat(_Frozen):
    """Structured output: a named JSON schema."""

    type: Literal["json_schema"] = "json_schema"
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool = True
    description: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class JsonObjectFormat(_Frozen):
    type: Literal["json_object"] = "json_object"


OutputFormat = JsonSchemaFormat | JsonObjectFormat

#: "auto" | "none" | "required" | the name of one function.
ToolChoice = Literal["auto", "none", "required"] | str


class Params(_Frozen):
    """Sampling and service parameters that both APIs understand (unset means: not sent)."""

    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    reasoning_effort: ReasoningEffort | None = None
    verbosity: Verbosity | None = None
    store: bool | None = None
    prompt_cache_key: str | None = None
    metadata: dict[str, str] | None = None
    stream: bool = True
    parallel_tool_calls: bool | None = None
    service_tier: ServiceTier | None = None
    user: str | None = None


class NeutralRequest(_Frozen):
    """Everything one call needs, independent of the API it goes to."""

    model: str
    messages: tuple[Message, ...]
    params: Params = Params()
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice | None = None
    output_format: OutputFormat | None = None
