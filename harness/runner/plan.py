"""The run plan: which conversations a run sends, to which arm, in which order, with which nonce.

A scenario becomes one :class:`PlannedConversation` per prompt × arm × repeat (plus warm-ups).
Each conversation holds a ``base`` request (model, params, tools, output format, the
system/developer message and the prompt's fixed ``messages``) and its ``steps``: one ``user`` step
per turn, each followed by a ``tool_results`` step when the prompt has tools, which answers the
reply's tool calls with the canned results. A fixed history that ends with a user or tool message
is itself the first request: its trailing user message (or tool results) is the first step, sent
verbatim, and a prompt with ``messages`` answers later tool calls only when it has
``tool_results``. :meth:`PlannedConversation.request_for` builds the neutral request of a step from
the history so far; the runner sends it and appends the reply with
:meth:`PlannedConversation.history_after`.

Order: warm-ups first, then for each repeat and each prompt the arms in an order shuffled by a
RNG seeded with (seed, scenario, prompt, repeat), so slow drift cannot favour one API.

Cache isolation (DESIGN §4): a short nonce derived from the seed is written at the very start of
the prompt prefix (the system message, else the first user message), so one arm's requests cannot
warm the server's prompt cache for another. ``conversation``: one nonce per prompt × arm × repeat
(every turn 1 is cold); ``arm``: one per arm (later repeats find a warm prefix); ``none``: no
nonce. Warm-ups get nonces of their own, so they warm connections, not the measured prefixes.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.arms import Api, Arm, StateMode
from harness.errors import HarnessError, TranslationError
from harness.scenario.load import (
    ImagePartSpec,
    PromptSpec,
    Scenario,
    TextPartSpec,
    split_reason,
)
from harness.scenario.models import CacheIsolation, ColdMode, MessageSpec
from harness.scenario.yaml_safe import Path_, Problem, format_path
from harness.translate.request import (
    FunctionTool,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaFormat,
    Message,
    NeutralRequest,
    OutputFormat,
    Params,
    Part,
    TextPart,
    ToolCall,
)


def cache_nonce(seed: int, *parts: str | int) -> str:
    """8 hex digits from the seed and the parts (stable across runs, so replays match)."""
    text = ":".join(str(p) for p in (seed, *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def nonce_prefix(nonce: str) -> str:
    return f"[run {nonce}] "


class Step(BaseModel):
    """One request of a conversation: a user turn, or the answers to the reply's tool calls."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["user", "tool_results"]
    content: str | tuple[Part, ...] | None = None
    tool_results: dict[str, str] = Field(default_factory=dict)
    #: Fixed messages this step sends as written (the end of a prompt's ``messages``).
    messages: tuple[Message, ...] = ()


def _pending_calls(history: tuple[Message, ...]) -> tuple[ToolCall, ...]:
    """Tool calls of the last assistant message, if nothing has answered them yet."""
    if history and history[-1].role == "assistant":
        return history[-1].tool_calls
    return ()


def _unknown_tool_output(name: str) -> str:
    return json.dumps({"error": f"no canned result for tool {name!r}"})


class PlannedConversation(BaseModel):
    """One prompt sent to one arm in one repeat: a base request and its steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str
    prompt_id: str
    arm: str
    api: Api
    chained: bool
    #: how earlier turns reach the server: resent (history), previous_response_id, conversation
    state: StateMode = "history"
    #: send earlier turns' reasoning items back (False: the ``+no_reasoning`` variant)
    carry_reasoning: bool = True
    repeat: int = Field(ge=1, description="1-based; warm-ups count their own 1, 2, …")
    warmup: bool
    conversation: str = Field(description="<scenario>/<prompt_id>/<arm>/r<repeat> (w<n>: warm-up)")
    nonce: str | None
    base: NeutralRequest = Field(
        description="model, params, tools, output format; messages = "
        "the system/developer message only (nonce applied)"
    )
    steps: tuple[Step, ...]
    #: scenario ``background: true`` on a Responses arm: the poll interval; None: foreground
    background_poll_ms: float | None = None

    def with_background(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with ``background: true`` when this conversation runs in background
        mode (the runner then follows each response to its end)."""
        return kwargs if self.background_poll_ms is None else {**kwargs, "background": True}

    def should_send(self, step_index: int, history: tuple[Message, ...]) -> bool:
        """A ``tool_results`` step is sent only when the last reply called tools."""
        step = self.steps[step_index]
        return step.kind == "user" or bool(step.messages) or bool(_pending_calls(history))

    def request_for(
        self, step_index: int, history: tuple[Message, ...]
    ) -> tuple[NeutralRequest, int]:
        """The full request of a step, and the index of its first new message.

        ``history`` is every message after ``base.messages`` so far (as returned by
        :meth:`history_after`). Unanswered tool calls at its end are answered first with the
        canned results (one ``tool`` message per call), then the step's user message is added.
        The returned index is where a chained request's ``input`` starts (the server holds the
        earlier messages via ``previous_response_id``).
        """
        step = self.steps[step_index]
        results = step.tool_results or self._tool_results()
        new: list[Message] = [
            Message(
                role="tool",
                tool_call_id=call.id,
                content=results.get(call.name, _unknown_tool_output(call.name)),
            )
            for call in _pending_calls(history)
        ]
        if step.messages:
            new.extend(step.messages)
        elif step.kind == "user":
            content = step.content
            new.append(
                Message(
                    role="user", content=list(content) if isinstance(content, tuple) else content
                )
            )
        elif not new:
            raise HarnessError(
                f"{self.conversation}: step {step_index + 1} answers tool calls, "
                "but the last reply made none — skip it (see should_send)"
            )
        tool_choice = self.base.tool_choice
        if (
            step.kind == "tool_results"
            and not step.messages
            and tool_choice
            not in (
                None,
                "auto",
                "none",
            )
        ):
            # A forced call would force another call after the results: let the model answer.
            tool_choice = "auto"
        request = self.base.model_copy(
            update={
                "messages": (*self.base.messages, *history, *new),
                "tool_choice": tool_choice,
            }
        )
        return request, len(self.base.messages) + len(history)

    def history_after(self, request: NeutralRequest, reply: Message) -> tuple[Message, ...]:
        """The history for the next step: this request's messages after the base, plus reply."""
        return (*request.messages[len(self.base.messages) :], reply)

    def _tool_results(self) -> dict[str, str]:
        for step in self.steps:
            if step.tool_results:
                return step.tool_results
        return {}


class Plan(BaseModel):
    """Every conversation of a run, in send order."""

    model_config = ConfigDict(extra="forbid")

    scenario: str
    seed: int
    repeats: int
    warmup: int
    cache_isolation: CacheIsolation
    cold: ColdMode
    arms: tuple[str, ...]
    conversations: list[PlannedConversation]

    def nonces(self) -> dict[str, str]:
        """conversation id → nonce (for run metadata)."""
        return {c.conversation: c.nonce for c in self.conversations if c.nonce is not None}


def _parts(content: str | list[TextPartSpec | ImagePartSpec]) -> str | tuple[Part, ...]:
    if isinstance(content, str):
        return content
    return tuple(
        TextPart(text=p.text)
        if isinstance(p, TextPartSpec)
        else ImagePart(url=p.image_url, detail=p.detail)
        for p in content
    )


def _prefixed(content: str | tuple[Part, ...], prefix: str) -> str | tuple[Part, ...]:
    if isinstance(content, str):
        return prefix + content
    if content and isinstance(content[0], TextPart):
        return (TextPart(text=prefix + content[0].text), *content[1:])
    return (TextPart(text=prefix.rstrip()), *content)


def _message(spec: MessageSpec) -> Message:
    content = None if spec.content is None else _parts(spec.content)
    return Message(
        role=spec.role,
        content=list(content) if isinstance(content, tuple) else content,
        tool_calls=tuple(
            ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in spec.tool_calls or ()
        ),
        tool_call_id=spec.tool_call_id,
    )


def _with_nonce(messages: list[Message], prefix: str) -> bool:
    """Write the nonce at the start of the first instruction or user text; False if none has."""
    for i, msg in enumerate(messages):
        if msg.role in ("system", "developer", "user") and msg.content is not None:
            content = msg.content if isinstance(msg.content, str) else tuple(msg.content)
            new = _prefixed(content, prefix)
            messages[i] = msg.model_copy(
                update={"content": new if isinstance(new, str) else list(new)}
            )
            return True
    return False


def _fixed_tail(messages: list[Message]) -> int:
    """Where the first request's own messages start: the last user message or the tool
    results that end a fixed history (``len(messages)`` when it ends otherwise)."""
    end = len(messages)
    if not messages or messages[-1].role not in ("user", "tool"):
        return end
    start = end - 1
    while messages[-1].role == "tool" and start > 0 and messages[start - 1].role == "tool":
        start -= 1
    return start


def _output_format(scenario: Scenario, prompt: PromptSpec) -> OutputFormat | None:
    spec = scenario.output_for(prompt)
    if spec is not None and not isinstance(spec, str):
        return JsonSchemaFormat.model_validate(
            {
                "name": spec.name,
                "schema": spec.json_schema,
                "strict": spec.strict,
                "description": spec.description,
            }
        )
    if spec == "json_object":
        return JsonObjectFormat()
    return None


def _conversation(
    scenario: Scenario,
    prompt: PromptSpec,
    arm: str,
    *,
    repeat: int,
    warmup: bool,
    nonce: str | None,
    max_output_tokens: int | None = None,
) -> PlannedConversation:
    parsed = Arm.parse(arm)
    chained = parsed.chained
    params = scenario.params_for(prompt)
    if max_output_tokens is not None:  # a cap for cheap smoke runs, never a raise
        params["max_output_tokens"] = min(
            max_output_tokens, params.get("max_output_tokens") or max_output_tokens
        )
    # DESIGN §3: store false everywhere except the chained arm and the +store variants
    # (validation rejects chained + an explicit store: false).
    if parsed.store:
        params["store"] = True
    params.setdefault("store", False)
    prefix = nonce_prefix(nonce) if nonce else ""

    messages: list[Message] = []
    instructions = scenario.instructions_for(prompt)
    if instructions is not None:
        role, text = instructions
        messages.append(Message(role=role, content=text))
    messages.extend(_message(m) for m in prompt.messages or ())
    if prefix and _with_nonce(messages, prefix):
        prefix = ""

    tools = scenario.tools_for(prompt)
    tool_choice = scenario.tool_choice_for(prompt)
    results = dict(prompt.tool_results or {})
    answers_tools = (
        bool(tools)
        and tool_choice != "none"
        and (prompt.messages is None or prompt.tool_results is not None)
    )
    steps: list[Step] = []
    if prompt.messages:
        start = _fixed_tail(messages)
        if start < len(messages):
            tail = tuple(messages[start:])
            del messages[start:]
            kind: Literal["user", "tool_results"] = (
                "user" if tail[-1].role == "user" else "tool_results"
            )
            steps.append(Step(kind=kind, messages=tail))
            if answers_tools:
                steps.append(Step(kind="tool_results", tool_results=results))
    for turn in prompt.user_turns:
        content = _parts(turn)
        if prefix:
            content, prefix = _prefixed(content, prefix), ""
        steps.append(Step(kind="user", content=content))
        if answers_tools:
            steps.append(Step(kind="tool_results", tool_results=results))
    if warmup:
        steps = steps[:1]

    base = NeutralRequest(
        model=scenario.model_for(prompt),
        messages=tuple(messages),
        params=Params(**params),
        tools=tuple(
            FunctionTool(
                name=t.name, description=t.description, parameters=t.parameters, strict=t.strict
            )
            for t in tools
        ),
        tool_choice=tool_choice,
        output_format=_output_format(scenario, prompt),
    )
    label = f"w{repeat}" if warmup else f"r{repeat}"
    return PlannedConversation(
        scenario=scenario.name,
        prompt_id=prompt.id,
        arm=arm,
        api=parsed.api,
        chained=chained,
        state=parsed.state,
        carry_reasoning=parsed.carries_reasoning,
        repeat=repeat,
        warmup=warmup,
        conversation=f"{scenario.name}/{prompt.id}/{arm}/{label}",
        nonce=nonce,
        base=base,
        steps=tuple(steps),
        background_poll_ms=scenario.background_poll_ms
        if scenario.background and Arm.parse(arm).api == "responses"
        else None,
    )


def _shuffled(arms: list[str], seed: int, *key: str | int) -> list[str]:
    order = list(arms)
    if len(order) > 1:  # seeding a generator costs more than the rest of a conversation's plan
        random.Random(":".join(str(k) for k in (seed, *key))).shuffle(order)
    return order


def build_plan(
    scenario: Scenario,
    *,
    repeats: int | None = None,
    seed: int = 0,
    max_output_tokens: int | None = None,
) -> Plan:
    """Every conversation a run of ``scenario`` sends, in send order (warm-ups first);
    ``max_output_tokens`` caps every request's output (``harness run --max-output-tokens``)."""
    count = scenario.repeats if repeats is None else repeats
    if count < 1:
        raise HarnessError(f"repeats must be at least 1, got {count}")
    isolation = scenario.cache_isolation
    name = scenario.name
    arms = list(scenario.arms)

    def nonce(arm: str, prompt: str, label: str) -> str | None:
        if isolation == "none":
            return None
        if isolation == "arm" and not label.startswith("warmup"):
            return cache_nonce(seed, name, arm)
        return cache_nonce(seed, name, prompt, arm, label)

    conversations: list[PlannedConversation] = []
    first = scenario.prompts[0]
    for w in range(1, scenario.warmup + 1):
        for arm in _shuffled(arms, seed, name, "warmup", w):
            conversations.append(
                _conversation(
                    scenario,
                    first,
                    arm,
                    repeat=w,
                    warmup=True,
                    nonce=nonce(arm, first.id, f"warmup{w}"),
                    max_output_tokens=max_output_tokens,
                )
            )
    for r in range(1, count + 1):
        for prompt in scenario.prompts:
            for arm in _shuffled(arms, seed, name, prompt.id, r):
                conversations.append(
                    _conversation(
                        scenario,
                        prompt,
                        arm,
                        repeat=r,
                        warmup=False,
                        nonce=nonce(arm, prompt.id, str(r)),
                        max_output_tokens=max_output_tokens,
                    )
                )
    return Plan(
        scenario=name,
        seed=seed,
        repeats=count,
        warmup=scenario.warmup,
        cache_isolation=isolation,
        cold=scenario.cold,
        arms=tuple(arms),
        conversations=conversations,
    )


# --- dry run ------------------------------------------------------------------------------------


class PlannedRequest(BaseModel):
    """One request of a dry run: run-time values (replies, call ids, response ids) are
    placeholders such as ``"<response of turn 1>"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order: int
    conversation: PlannedConversation
    turn: int
    kind: Literal["user", "tool_results"]
    request: NeutralRequest
    new_from: int
    previous_response_id: str | None
    conversation_id: str | None = None

    @property
    def cold(self) -> bool:
        """Turn 1 of a conversation: its prefix is new to the server (with conversation
        isolation; see the module docstring for ``arm`` and ``none``)."""
        return self.turn == 1

    def kwargs(self) -> dict[str, Any]:
        """What the SDK would be called with (raises TranslationError if it cannot map)."""
        from harness.translate.convert import to_chat_kwargs, to_responses_kwargs

        conv = self.conversation
        if conv.api == "chat":
            return to_chat_kwargs(self.request)
        held = self.previous_response_id is not None or self.conversation_id is not None
        return conv.with_background(
            to_responses_kwargs(
                self.request,
                chained=conv.chained,
                previous_response_id=self.previous_response_id,
                new_from=self.new_from if held else 0,
                conversation=self.conversation_id,
                carry_reasoning=conv.carry_reasoning,
            )
        )

    def conversation_create_items(self) -> list[dict[str, Any]] | None:
        """What the conversation arm's turn 1 creates its conversation with (the fixed history
        before the turn: ``conversations.create`` takes 20, ``items.create`` the rest); None on
        other arms and turns."""
        from harness.translate.convert import conversation_items

        if self.conversation.state != "conversation" or self.turn != 1:
            return None
        return conversation_items(
            self.request, self.new_from, store=bool(self.request.params.store)
        )

    def summary(self) -> dict[str, Any]:
        conv = self.conversation
        return {
            "order": self.order,
            "scenario": conv.scenario,
            "prompt_id": conv.prompt_id,
            "arm": conv.arm,
            "api": conv.api,
            "chained": conv.chained,
            "state": conv.state,
            "turn": self.turn,
            "kind": self.kind,
            "repeat": conv.repeat,
            "conversation": conv.conversation,
            "cold": self.cold,
            "warmup": conv.warmup,
            "nonce": conv.nonce,
            "est_input_tokens": estimate_input_tokens(self.request),
        }


def _placeholder_reply(conv: PlannedConversation, step_index: int) -> Message:
    """What the run will get back, as placeholders (tool calls if a tool step follows)."""
    turn = step_index + 1
    following = conv.steps[step_index + 1] if step_index + 1 < len(conv.steps) else None
    if following is None or following.kind != "tool_results":
        return Message(role="assistant", content=f"<assistant reply of turn {turn}>")
    names = [t.name for t in conv.base.tools]
    choice = conv.base.tool_choice
    if choice in names:
        names = [str(choice)]
    elif following.tool_results:
        names = [n for n in names if n in following.tool_results] or names
    calls = tuple(
        ToolCall(
            id=f"<call_id from turn {turn}>"
            if len(names) == 1
            else f"<call_id {i} from turn {turn}>",
            name=name,
            arguments=f"<arguments from turn {turn}>",
        )
        for i, name in enumerate(names, 1)
    )
    return Message(role="assistant", tool_calls=calls)


#: The Conversations API id a dry run shows: the conversation is created when the run starts.
CONVERSATION_PLACEHOLDER = "<conversation created at turn 1>"


def dry_run(plan: Plan) -> Iterator[PlannedRequest]:
    """Every request of the plan in send order, assuming tools are always called."""
    order = 0
    for conv in plan.conversations:
        history: tuple[Message, ...] = ()
        for index, step in enumerate(conv.steps):
            request, new_from = conv.request_for(index, history)
            order += 1
            previous = f"<response of turn {index}>" if conv.chained and index > 0 else None
            yield PlannedRequest(
                conversation_id=CONVERSATION_PLACEHOLDER if conv.state == "conversation" else None,
                order=order,
                conversation=conv,
                turn=index + 1,
                kind=step.kind,
                request=request,
                new_from=new_from,
                previous_response_id=previous,
            )
            history = conv.history_after(request, _placeholder_reply(conv, index))


def estimate_input_tokens(request: NeutralRequest) -> int:
    """Offline estimate of a request's input tokens; earlier replies count as empty (they are
    only known at run time), so this is a lower bound from turn 2 on."""
    from harness.translate.tokens import (
        MESSAGE_OVERHEAD_TOKENS,
        REPLY_PRIMING_TOKENS,
        count_content_tokens,
        count_text_tokens,
    )

    model = request.model
    total = REPLY_PRIMING_TOKENS
    for message in request.messages:
        total += MESSAGE_OVERHEAD_TOKENS
        if message.role != "assistant":
            total += count_content_tokens(message.content, model)
    for tool in request.tools:
        total += count_text_tokens(json.dumps(tool.model_dump(), sort_keys=True), model)
    if isinstance(request.output_format, JsonSchemaFormat):
        total += count_text_tokens(json.dumps(request.output_format.schema_, sort_keys=True), model)
    return total


def translation_problems(scenario: Scenario) -> list[str]:
    """Translate one repeat of the plan for both APIs; each request a translator cannot
    express becomes one ``file:line: prompts[i]: message — fix`` line (a problem both APIs
    share is reported once, without the API name)."""
    index = {p.id: i for i, p in enumerate(scenario.prompts)}
    failures: dict[tuple[int, str], set[str]] = {}
    for planned in dry_run(build_plan(scenario, repeats=1)):
        try:
            planned.kwargs()
        except TranslationError as exc:
            api = planned.conversation.api
            text = str(exc).removeprefix(f"{api}: ")
            key = (index[planned.conversation.prompt_id], text)
            failures.setdefault(key, set()).add(api)
    found: list[str] = []
    for (prompt_index, text), apis in failures.items():
        message, fix = split_reason(text if len(apis) > 1 else f"{min(apis)}: {text}")
        at: Path_ = ("prompts", prompt_index)
        loc = scenario.location(at)
        found.append(str(Problem(loc.file, loc.line, format_path(at), message, fix)))
    return found


def translation_notes(scenario: Scenario) -> list[str]:
    """What the default translation changes so the real APIs accept the scenario's requests
    (:func:`harness.translate.convert.translation_notes`), one ``file:line: prompts[i]: note:
    api: …`` line per prompt and note — migration findings, not errors."""
    from harness.translate.convert import translation_notes as notes_of

    index = {p.id: i for i, p in enumerate(scenario.prompts)}
    prompts_of: dict[str, dict[int, None]] = {}
    for planned in dry_run(build_plan(scenario, repeats=1)):
        api = planned.conversation.api
        for note in notes_of(planned.request, api):
            prompts_of.setdefault(f"{api}: {note}", {})[index[planned.conversation.prompt_id]] = (
                None
            )
    found: list[str] = []
    for text, prompts in prompts_of.items():
        # a scenario-wide setting (defaults) gives the same note for every prompt: say it once
        first, *more = prompts
        at: Path_ = ("prompts", first)
        loc = scenario.location(at)
        also = f" (and {len(more)} more prompt{'s' if len(more) > 1 else ''})" if more else ""
        found.append(f"{loc.file}:{loc.line}: {format_path(at)}{also}: note: {text}")
    return found


def model_warnings(scenario: Scenario) -> list[str]:
    """A ``file:line: model: warning: …`` line per model that the capability table or the price
    list does not know, with the closest known names: a typo otherwise costs a whole run of
    404s."""
    from harness.analysis.pricing import is_priced, known_models
    from harness.errors import closest
    from harness.translate.capabilities import model_info

    found: list[str] = []
    seen: set[str] = set()
    for index, prompt in enumerate(scenario.prompts):
        model = scenario.model_for(prompt)
        known, priced = model_info(model).known, is_priced(model)
        if model in seen or (known and priced):
            continue
        seen.add(model)
        at: Path_ = ("prompts", index, "model") if prompt.model else ("model",)
        loc = scenario.location(at)
        unknown_to = " and ".join(
            what
            for what, ok in (("the capability table", known), ("the price list", priced))
            if not ok
        )
        near = closest(model, known_models(), n=3)
        also = f" (or {', '.join(near[1:])})" if near[1:] else ""
        hint = f"did you mean {near[0]}{also}? " if near else ""
        found.append(
            f"{loc.file}:{loc.line}: {format_path(at)}: warning: model {model!r} is unknown to "
            f"{unknown_to} — {hint}(OpenAI answers an unknown model with 404 model_not_found; "
            "a server with its own model names is fine)"
        )
    return found
