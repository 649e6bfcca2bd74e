"""The neutral request both endpoints are parsed into, and its rendering into prompt tokens.

Chat messages and Responses input items become the same :class:`Segment` list, so equivalent
requests to the two APIs render to the *same* token sequence. That is what lets one prompt
cache serve both endpoints, and what makes a chained Responses turn (stored chain + new input)
bill like the stateless turn that resends the history.

Rendering: ``[tools] [output schema] [instructions/system] messages… <reply priming>``, each
segment framed by 3 tokens (start, role, end) like OpenAI's chat format, plus 3 priming tokens.
Text is tokenized with the real ``o200k_base`` BPE (``bpe-openai``, offline). Images count
``harness.translate.tokens.IMAGE_TOKENS`` placeholder tokens keyed by the image URL; reasoning items
count their reasoning tokens, keyed by their encrypted content, so a stateless resend of a reasoning
item renders exactly like the same item inside a stored chain.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from harness.emulator.models import ModelInfo
from harness.translate.tokens import IMAGE_TOKENS

Api = Literal["chat", "responses"]

# Framing ids sit above every BPE vocabulary so they never collide with text tokens.
_START, _END = 1_000_001, 1_000_002
_ROLE_IDS = {
    "system": 1_000_010,
    "user": 1_000_011,
    "assistant": 1_000_012,
    "tool": 1_000_013,
    "tools": 1_000_014,
    "format": 1_000_015,
    "reasoning": 1_000_016,
    "function_call": 1_000_017,
}
_PLACEHOLDER_BASE = 1_100_000
MESSAGE_FRAMING_TOKENS = 3
PRIMING = array("I", [_START, _ROLE_IDS["assistant"], _END]).tobytes()


@dataclass(frozen=True, slots=True)
class Segment:
    """One rendered unit of the prompt: a message, a tool call, a tool output, an image…

    ``role`` is one of system (also developer and instructions), user, assistant,
    function_call, tool (a tool output), reasoning, tools, format. ``placeholder_tokens`` is the
    token count of an image or reasoning item, whose ``text`` is then only its identity.
    """

    role: str
    text: str
    name: str = ""
    call_id: str = ""
    placeholder_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function tool, whichever API shape it came in."""

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool | None


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """``json_object`` or ``json_schema`` structured output (plain text is ``None``)."""

    kind: Literal["json_object", "json_schema"]
    name: str = ""
    schema: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class GenRequest:
    """A validated request in neutral form; ``body`` keeps the original for echo fields."""

    api: Api
    model: ModelInfo
    body: dict[str, Any]
    prefix: list[Segment]
    conversation: list[Segment]
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str = "auto"
    forced_tool: str | None = None
    parallel_tool_calls: bool = True
    output: OutputFormat | None = None
    max_output_tokens: int | None = None
    temperature: float = 1.0
    effort: str | None = None
    verbosity: str | None = None
    stream: bool = False
    include_usage: bool = False
    store: bool = False
    include_encrypted: bool = False
    previous_response_id: str | None = None
    #: the conversation (``conversation`` on Responses) and this request's input as it will hold it
    conversation_id: str | None = None
    new_items: list[tuple[dict[str, Any], list[Segment]]] = field(default_factory=list)
    prompt_cache_key: str | None = None
    cache_ttl_s: float | None = None
    n: int = 1
    all_turns_reasoning: bool = False
    reasoning_summary: bool = False

    @property
    def service_tier(self) -> str:
        """The tier a reply reports: the one requested, ``default`` for ``auto`` or none, and
        ``priority`` for ``fast`` (the spec: fast mode is reported as priority)."""
        tier = self.body.get("service_tier")
        if tier in (None, "auto"):
            return "default"
        return "priority" if tier == "fast" else str(tier)

    def cache_partition(self) -> str:
        """What besides the model keys the prompt cache: ``prompt_cache_key``, reasoning effort,
        verbosity and service tier (the SDK's ``PromptCacheDiagnosticsCacheMiss`` reasons), at
        their defaults when unset so equivalent Chat and Responses requests share a cache."""
        effort = (self.effort or "medium") if self.model.reasoning else ""
        key = self.prompt_cache_key if isinstance(self.prompt_cache_key, str) else ""
        return "\x1f".join((key, effort, self.verbosity or "medium", self.service_tier))

    def model_context(self) -> list[Segment]:
        """The conversation as the model sees it (and bills it).

        Reasoning items of earlier turns are dropped unless ``reasoning.context`` is
        ``all_turns``: the spec's default for models before gpt-5.6 (all the emulator knows)
        is ``current_turn``, so a resent or stored earlier turn's reasoning is not input.
        Reasoning after the last user message (a tool-call loop within this turn) stays.
        """
        if self.all_turns_reasoning:
            return self.conversation
        last_user = max(
            (i for i, s in enumerate(self.conversation) if s.role == "user"), default=-1
        )
        return [
            s for i, s in enumerate(self.conversation) if s.role != "reasoning" or i > last_user
        ]

    def last_user_text(self) -> str:
        """Text of the last user message (the question the reply answers)."""
        for seg in reversed(self.conversation):
            if seg.role == "user":
                return seg.text
        return ""

    def pending_tool_outputs(self) -> list[Segment]:
        """Tool outputs that came after the last user message (to be answered now)."""
        out: list[Segment] = []
        for seg in reversed(self.conversation):
            if seg.role == "user":
                break
            if seg.role == "tool":
                out.append(seg)
        return out[::-1]

    def user_turns(self) -> int:
        """How many user messages the conversation holds."""
        return sum(1 for seg in self.conversation if seg.role == "user")


def tool_segment(tools: list[ToolSpec]) -> Segment:
    """The tool definitions as one prompt segment (same text for both API shapes)."""
    canon = [
        {"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools
    ]
    return Segment("tools", json.dumps(canon, sort_keys=True, separators=(",", ":")))


def format_segment(fmt: OutputFormat) -> Segment:
    """The structured-output schema as one prompt segment."""
    return Segment(
        "format",
        json.dumps({"name": fmt.name, "schema": fmt.schema}, sort_keys=True, separators=(",", ":")),
    )


def prompt_prefix(
    instructions: list[Segment], tools: list[ToolSpec], output: OutputFormat | None
) -> list[Segment]:
    """The prefix before the conversation: instructions, tools, then a JSON schema.

    One function for both APIs, so the same request renders (and caches) the same prefix on
    either; see :func:`leading_instructions` for why in this order.
    """
    return (
        instructions
        + ([tool_segment(tools)] if tools else [])
        + ([format_segment(output)] if output is not None and output.kind == "json_schema" else [])
    )


# --- tokens -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def encode(text: str) -> list[int]:
    """BPE tokens of ``text`` (special-token look-alikes are plain text, as in user input)."""
    tokens: list[int] = _encoding().encode_ordinary(text)
    return tokens


def decode_pieces(tokens: list[int]) -> list[str]:
    """One string per token, holding back bytes until they form whole UTF-8 characters."""
    enc = _encoding()
    pieces: list[str] = []
    pending = b""
    for tok in tokens:
        pending += enc.decode_single_token_bytes(tok)
        try:
            pieces.append(pending.decode("utf-8"))
            pending = b""
        except UnicodeDecodeError:
            continue
    if pending:
        pieces.append(pending.decode("utf-8", errors="replace"))
    return pieces


def decode(tokens: list[int]) -> str:
    """Text of ``tokens``."""
    text: str = _encoding().decode(tokens)
    return text


def count(text: str) -> int:
    """Number of BPE tokens in ``text``."""
    return len(encode(text)) if text else 0


@lru_cache(maxsize=16384)
def segment_tokens(seg: Segment) -> bytes:
    """The framed tokens of a segment as packed uint32 (cached: system prompts repeat)."""
    if seg.placeholder_tokens:
        ident = int.from_bytes(hashlib.blake2b(seg.text.encode(), digest_size=4).digest())
        body = [_PLACEHOLDER_BASE + (ident + i) % 90_000 for i in range(seg.placeholder_tokens)]
    else:
        text = f"{seg.name}\n{seg.text}" if seg.role == "function_call" else seg.text
        body = encode(text)
    return array("I", [_START, _ROLE_IDS[seg.role], *body, _END]).tobytes()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A prompt as packed uint32 tokens, with the token offsets where segments end."""

    data: bytes
    boundaries: tuple[int, ...]

    @property
    def n_tokens(self) -> int:
        """Input tokens billed for this prompt."""
        return len(self.data) // 4


def render(segments: list[Segment]) -> Rendered:
    """Render segments plus reply priming into one token sequence."""
    parts = [segment_tokens(s) for s in segments]
    bounds: list[int] = []
    total = 0
    for part in parts:
        total += len(part) // 4
        bounds.append(total)
    parts.append(PRIMING)
    return Rendered(b"".join(parts), tuple(bounds))


def message_segments(role: str, text: str, images: list[str]) -> list[Segment]:
    """A Chat message's or Responses message item's content (``text_of_parts``' text and image
    identities) as segments: developer counts as system; the text, unless an assistant message
    holds none; then one placeholder per image, sized by its ``detail`` as OpenAI bills it."""
    seg_role = "system" if role in ("system", "developer") else role
    out: list[Segment] = []
    if (text or not images) and (text or role != "assistant"):
        out.append(Segment(seg_role, text))
    for ident in images:
        detail = ident.split("\x1f", 1)[0]
        tokens = IMAGE_TOKENS.get(detail, IMAGE_TOKENS["auto"])
        out.append(Segment(seg_role, ident, placeholder_tokens=tokens))
    return out


def leading_instructions(conversation: list[Segment]) -> list[Segment]:
    """Remove and return the system/developer segments that open a conversation.

    The prompt is rendered instructions first, then tool definitions and the output schema,
    then the conversation (the order of OpenAI's own rendering as far as it is documented):
    so a cache-isolation nonce at the start of the instructions isolates the whole prefix, even
    when tools and schemas alone pass 1,024 tokens.
    """
    lead: list[Segment] = []
    while conversation and conversation[0].role == "system":
        lead.append(conversation.pop(0))
    return lead
