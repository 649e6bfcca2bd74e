"""The planner: conversations, send order, cache nonces, steps, tool round trips, dry run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.runner.plan import (
    Plan,
    PlannedConversation,
    build_plan,
    cache_nonce,
    dry_run,
    estimate_input_tokens,
    translation_problems,
)
from harness.scenario.load import Scenario, load_scenario
from harness.translate.request import ImagePart, Message, TextPart, ToolCall
from harness.translate.tokens import CACHE_MIN_TOKENS

# bpe-openai (harness.translate.tokens) loads its tables with a deprecated importlib.resources call.

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
HEAD = "version: 1\nname: t\nmodel: gpt-4.1-mini\n"


def scenario(tmp_path: Path, body: str) -> Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    return load_scenario(path)


TWO_TURNS = (
    "arms: [chat, responses, responses_chained]\nrepeats: 3\nwarmup: 1\n"
    "system: Be brief.\nprompts:\n  - id: a\n    turns: [Hi, Again]\n"
    "  - id: b\n    input: Bye\n"
)
TOOLS = (
    "arms: [chat, responses_chained]\nrepeats: 1\nprompts:\n  - id: w\n"
    "    turns: [Weather?, Tomorrow?]\n    tools: [{name: get_weather}, {name: get_time}]\n"
    "    tool_choice: get_weather\n"
    "    tool_results: {get_weather: sunny, get_time: noon}\n"
)


# --- conversations and order ---------------------------------------------------------------------


def test_counts_and_warmups_first(tmp_path: Path) -> None:
    plan = build_plan(scenario(tmp_path, TWO_TURNS))
    convs = plan.conversations
    assert len(convs) == 3 * 1 + 3 * 2 * 3  # warm-ups per arm + repeats × prompts × arms
    assert [c.warmup for c in convs[:3]] == [True] * 3
    assert not any(c.warmup for c in convs[3:])
    assert {c.prompt_id for c in convs[:3]} == {"a"}
    assert all(len(c.steps) == 1 for c in convs[:3])  # a warm-up is one request
    assert Counter(c.arm for c in convs[3:]) == {"chat": 6, "responses": 6, "responses_chained": 6}


def test_order_is_blocked_by_repeat_and_prompt_and_shuffled_by_seed(tmp_path: Path) -> None:
    sc = scenario(tmp_path, TWO_TURNS.replace("repeats: 3", "repeats: 12"))
    plan = build_plan(sc, seed=1)
    measured = [c for c in plan.conversations if not c.warmup]
    blocks = [measured[i : i + 3] for i in range(0, len(measured), 3)]
    assert [(b[0].repeat, b[0].prompt_id) for b in blocks[:4]] == [
        (1, "a"),
        (1, "b"),
        (2, "a"),
        (2, "b"),
    ]
    assert all(
        {c.arm for c in b} == set(sc.arms) and len({c.repeat for c in b}) == 1 for b in blocks
    )
    orders = {tuple(c.arm for c in b) for b in blocks}
    assert len(orders) > 1  # not always the same arm first
    firsts = Counter(b[0].arm for b in blocks)
    assert len(firsts) > 1
    assert build_plan(sc, seed=1) == plan  # deterministic
    assert [c.arm for c in build_plan(sc, seed=2).conversations] != [
        c.arm for c in plan.conversations
    ]


def test_repeats_override_and_validation(tmp_path: Path) -> None:
    sc = scenario(tmp_path, TWO_TURNS)
    assert build_plan(sc, repeats=1).repeats == 1
    assert max(c.repeat for c in build_plan(sc, repeats=7).conversations) == 7
    with pytest.raises(HarnessError, match="at least 1"):
        build_plan(sc, repeats=0)


def test_conversation_fields(tmp_path: Path) -> None:
    plan = build_plan(scenario(tmp_path, TWO_TURNS))
    conv = next(
        c
        for c in plan.conversations
        if c.arm == "responses_chained" and c.repeat == 2 and c.prompt_id == "a"
    )
    assert conv.conversation == "t/a/responses_chained/r2"
    assert (conv.api, conv.chained, conv.warmup) == ("responses", True, False)
    assert [s.kind for s in conv.steps] == ["user", "user"]
    assert conv.base.params.store is True
    chat = next(c for c in plan.conversations if c.arm == "chat")
    assert chat.api == "chat" and chat.base.params.store is False
    assert plan.conversations[0].conversation.endswith("/w1")


def test_user_store_true_is_kept_on_every_arm(tmp_path: Path) -> None:
    plan = build_plan(scenario(tmp_path, TWO_TURNS + "defaults: {store: true}\n"))
    assert {c.base.params.store for c in plan.conversations} == {True}


# --- cache isolation ----------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", ["conversation", "arm", "none"])
def test_nonces(tmp_path: Path, isolation: str) -> None:
    plan = build_plan(scenario(tmp_path, TWO_TURNS + f"cache_isolation: {isolation}\n"), seed=5)
    measured = [c for c in plan.conversations if not c.warmup]
    warm = [c for c in plan.conversations if c.warmup]
    nonces = [c.nonce for c in measured]
    if isolation == "none":
        assert set(nonces) == {None}
        assert all(c.base.messages[0].content == "Be brief." for c in plan.conversations)
        return
    assert all(
        c.base.messages[0].content == f"[run {c.nonce}] Be brief." for c in plan.conversations
    )
    assert not {c.nonce for c in warm} & set(nonces)  # warm-ups never warm a measured prefix
    if isolation == "conversation":
        assert len(set(nonces)) == len(measured)
        conv = measured[0]
        assert conv.nonce == cache_nonce(5, "t", conv.prompt_id, conv.arm, str(conv.repeat))
    else:
        by_arm: dict[str, set[str | None]] = {}
        for c in measured:
            by_arm.setdefault(c.arm, set()).add(c.nonce)
        assert all(len(v) == 1 for v in by_arm.values())
        assert len({next(iter(v)) for v in by_arm.values()}) == len(by_arm)


def test_nonces_depend_on_seed_only_through_the_hash(tmp_path: Path) -> None:
    sc = scenario(tmp_path, TWO_TURNS)
    assert build_plan(sc, seed=3).nonces() == build_plan(sc, seed=3).nonces()
    assert build_plan(sc, seed=3).nonces() != build_plan(sc, seed=4).nonces()


def test_nonce_goes_into_first_user_message_without_system(tmp_path: Path) -> None:
    sc = scenario(
        tmp_path,
        "prompts:\n  - id: t\n    turns: [Hi, Again]\n"
        "  - id: img\n    input: [{image_url: 'https://x.test/a.png'}, {text: Hi}]\n",
    )
    plan = build_plan(sc, repeats=1)
    text = next(c for c in plan.conversations if c.prompt_id == "t")
    assert text.base.messages == ()
    assert text.steps[0].content == f"[run {text.nonce}] Hi"
    assert text.steps[1].content == "Again"
    image = next(c for c in plan.conversations if c.prompt_id == "img")
    content = image.steps[0].content
    assert isinstance(content, tuple)
    assert content[0] == TextPart(text=f"[run {image.nonce}]")
    assert isinstance(content[1], ImagePart) and content[1].detail == "auto"


# --- steps and requests --------------------------------------------------------------------------


def _conv(plan: Plan, arm: str, prompt: str = "a") -> PlannedConversation:
    return next(
        c for c in plan.conversations if c.arm == arm and c.prompt_id == prompt and not c.warmup
    )


def test_request_for_builds_the_full_history(tmp_path: Path) -> None:
    conv = _conv(build_plan(scenario(tmp_path, TWO_TURNS)), "chat")
    first, new_from = conv.request_for(0, ())
    assert [m.role for m in first.messages] == ["system", "user"] and new_from == 1
    reply = Message(role="assistant", content="Hello!")
    history = conv.history_after(first, reply)
    assert [m.content for m in history] == ["Hi", "Hello!"]
    second, new_from = conv.request_for(1, history)
    assert [m.content for m in second.messages][1:] == ["Hi", "Hello!", "Again"]
    assert new_from == 3 and second.messages[new_from:] == (Message(role="user", content="Again"),)


def test_tool_round_trip(tmp_path: Path) -> None:
    conv = _conv(build_plan(scenario(tmp_path, TOOLS)), "chat", "w")
    assert [s.kind for s in conv.steps] == ["user", "tool_results", "user", "tool_results"]
    request, _ = conv.request_for(0, ())
    assert request.tool_choice == "get_weather"
    calls = (
        ToolCall(id="c1", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCall(id="c2", name="lookup", arguments="{}"),
    )
    history = conv.history_after(request, Message(role="assistant", tool_calls=calls))
    assert conv.should_send(1, history)
    follow_up, new_from = conv.request_for(1, history)
    tool_messages = follow_up.messages[new_from:]
    assert [(m.role, m.tool_call_id, m.content) for m in tool_messages] == [
        ("tool", "c1", "sunny"),
        ("tool", "c2", json.dumps({"error": "no canned result for tool 'lookup'"})),
    ]
    assert follow_up.tool_choice == "auto"  # a forced call would force another one

    # No tool call in the reply: the tool step is skipped, and asking for it is an error.
    plain = conv.history_after(request, Message(role="assistant", content="It is sunny."))
    assert not conv.should_send(1, plain)
    with pytest.raises(HarnessError, match="skip it"):
        conv.request_for(1, plain)


def test_unanswered_calls_are_answered_before_the_next_user_turn(tmp_path: Path) -> None:
    conv = _conv(build_plan(scenario(tmp_path, TOOLS)), "chat", "w")
    request, _ = conv.request_for(0, ())
    history = conv.history_after(
        request,
        Message(role="assistant", tool_calls=(ToolCall(id="c9", name="get_time", arguments="{}"),)),
    )
    next_turn, new_from = conv.request_for(2, history)
    assert [(m.role, m.content) for m in next_turn.messages[new_from:]] == [
        ("tool", "noon"),
        ("user", "Tomorrow?"),
    ]


# --- dry run -------------------------------------------------------------------------------------


def test_dry_run_placeholders_and_chaining(tmp_path: Path) -> None:
    plan = build_plan(scenario(tmp_path, TOOLS))
    planned = [p for p in dry_run(plan) if p.conversation.arm == "responses_chained"]
    assert [p.turn for p in planned] == [1, 2, 3, 4]
    assert [p.previous_response_id for p in planned] == [
        None,
        "<response of turn 1>",
        "<response of turn 2>",
        "<response of turn 3>",
    ]
    assert [p.cold for p in planned] == [True, False, False, False]
    kwargs = planned[1].kwargs()
    assert kwargs["previous_response_id"] == "<response of turn 1>"
    assert kwargs["input"] == [
        {"type": "function_call_output", "call_id": "<call_id from turn 1>", "output": "sunny"}
    ]
    assert kwargs["store"] is True
    chat = [p for p in dry_run(plan) if p.conversation.arm == "chat"]
    messages = chat[2].kwargs()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert messages[3]["content"] == "<assistant reply of turn 2>"
    assert [p.order for p in dry_run(plan)] == list(range(1, 9))


def test_estimate_input_tokens_marks_cacheable_prompts() -> None:
    sc = load_scenario(SCENARIOS / "quickstart.yaml")
    first = next(dry_run(build_plan(sc, repeats=1)))
    assert estimate_input_tokens(first.request) >= CACHE_MIN_TOKENS
    small = first.request.model_copy(update={"messages": first.request.messages[1:]})
    assert estimate_input_tokens(small) < 100


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_translate_for_every_arm(path: Path) -> None:
    assert translation_problems(load_scenario(path)) == []


@pytest.mark.parametrize(
    ("fails", "expected"),
    [
        ({"chat"}, "prompts[0]: chat: x: cannot map — fix it"),
        ({"chat", "responses"}, "prompts[0]: x: cannot map — fix it"),
    ],
)
def test_validate_reports_what_the_translator_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: set[str], expected: str
) -> None:
    import harness.translate.convert as translate
    from harness.errors import TranslationError
    from harness.scenario.load import validate_paths

    for api in fails:

        def reject(*args: object, api: str = api, **kwargs: object) -> dict[str, object]:
            raise TranslationError(f"{api}: x: cannot map; fix it")

        monkeypatch.setattr(translate, f"to_{api}_kwargs", reject)
    path = tmp_path / "s.yaml"
    path.write_text(HEAD + "prompts:\n  - id: p\n    input: Hi\n")
    assert validate_paths([path], check=translation_problems) == (
        [f"{path.as_posix()}:5: {expected}"],
        1,
    )


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_request_passes_the_openapi_spec(path: Path) -> None:
    """Every request of every example, every arm and turn: spec schema + top-level keys."""
    from harness.translate.spec import request_problems

    plan = build_plan(load_scenario(path), repeats=1, seed=0)
    checked = 0
    for planned in dry_run(plan):
        endpoint = "/chat/completions" if planned.conversation.api == "chat" else "/responses"
        assert request_problems(endpoint, planned.kwargs()) == [], (
            planned.conversation.conversation,
            planned.turn,
        )
        checked += 1
    assert checked >= len(plan.conversations)


@pytest.mark.parametrize(("cap", "expected"), [(16, {16}), (5000, {2000}), (None, {2000})])
def test_max_output_tokens_caps_every_request_and_never_raises(
    cap: int | None, expected: set[int]
) -> None:
    scenario = load_scenario(
        Path(__file__).resolve().parents[2] / "scenarios/batch_summarization.yaml"
    )
    plan = build_plan(scenario, repeats=1, max_output_tokens=cap)
    assert {c.base.params.max_output_tokens for c in plan.conversations} == expected


def test_run_rejects_a_cap_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "scenarios/quickstart.yaml", "--max-output-tokens", "0"])
    assert exc.value.code == 2
    assert "--max-output-tokens" in capsys.readouterr().err
