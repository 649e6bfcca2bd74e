"""State arms against the emulator: the shipped agent scenario on every state mode, what the
server holds after each turn, lost state, clean-up (also after Ctrl-C), refusal up front."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from harness.analysis.metrics import ObservationTable, billed_tokens, with_nonce_tokens
from harness.arms import STATE_ARMS
from harness.cli.app import main
from harness.emulator.server import EmulatorThread
from harness.errors import TargetError
from harness.records import NOT_SENT, STATE_LOST, Observation, RunMeta
from harness.rundir import read_meta, read_observations, read_summary
from harness.runner.capabilities import Feature, check_plans, emulator_capabilities
from harness.runner.execute import RunOptions, run
from harness.runner.plan import build_plan
from harness.runner.state import ConversationState, StateCheck, open_conversation
from harness.scenario.load import load_scenario
from harness.transport.client import StateReply, Transport

Emulators = Any  # tests/conftest.py's Emulators (conftest modules are not imported)

AGENT = Path(__file__).resolve().parents[2] / "scenarios" / "agent_tool_loop.yaml"


@dataclass
class AgentRun:
    server: EmulatorThread
    run_dir: Path
    meta: RunMeta
    observations: list[Observation]

    def by_arm(self, arm: str) -> dict[tuple[int, int], Observation]:
        return {(o.repeat, o.turn): o for o in self.observations if o.arm == arm}


@pytest.fixture(scope="module")
def agent_run(
    module_emulators: Emulators, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentRun]:
    """The shipped agent scenario, 2 repeats, against a zero-profile emulator this module
    owns (a URL target, so the tests can look into the server's state afterwards)."""
    server = module_emulators.start("zero")
    assert isinstance(server, EmulatorThread)
    out = tmp_path_factory.mktemp("agent") / "runs"
    args = ["run", str(AGENT), "--target", server.base_url, "--out", str(out)]
    assert main([*args, "--repeats", "2", "--seed", "3", "--quiet"]) == 0
    run_dir = next(out.iterdir())
    yield AgentRun(
        server,
        run_dir,
        read_meta(run_dir),
        list(read_observations(run_dir / "observations.jsonl")),
    )


def test_every_state_arm_runs_without_errors(agent_run: AgentRun) -> None:
    assert {o.arm for o in agent_run.observations} == set(STATE_ARMS)
    failed = [o for o in agent_run.observations if not o.ok and o.error_type != NOT_SENT]
    assert failed == []
    # each arm sent its five requests per conversation (the tool step after the fixed tool
    # results is not needed: the model answers it)
    for arm in STATE_ARMS:
        sent = [o for o in agent_run.observations if o.arm == arm and o.ok]
        assert len(sent) == 2 * 5, arm


def test_the_conversation_arm_sends_only_new_items_and_the_server_keeps_one_line(
    agent_run: AgentRun,
) -> None:
    chained = agent_run.by_arm("responses_chained")
    stateless = agent_run.by_arm("responses")
    for arm in ("responses_conversation", "responses_conversation+store"):
        conv = agent_run.by_arm(arm)
        ids = {o.conversation_id for o in conv.values() if o.ok}
        assert len(ids) == 2 and None not in ids  # one conversation per repeat
        for key, o in conv.items():
            if not o.ok:
                continue
            # what the server listed after the turn: nothing sent twice, no fork
            assert (o.duplicate_items, o.forked, o.state_check_error) == (0, False, None)
            # only the turn's own items went out, as on the chained arm (turn 1: the fixed
            # history went into conversations.create, the tool result is the turn); history
            # resends more
            assert o.items_sent == (chained[key].items_sent if key[1] > 1 else 1)
            if key[1] > 1:
                assert o.items_sent is not None and stateless[key].items_sent is not None
                assert o.items_sent < stateless[key].items_sent
            # the conversation holds what the chain holds, item for item
            assert o.items_held == chained[key].items_held
        by_repeat: dict[int, list[Observation]] = defaultdict(list)
        for (rep, _), o in sorted(conv.items()):
            if o.ok:
                by_repeat[rep].append(o)
        for turns in by_repeat.values():
            held = [o.items_held or 0 for o in turns]
            grew = [b - a for a, b in itertools.pairwise(held)]
            # each turn adds what it sent plus the reply (reasoning + message or call)
            sent = [o.items_sent or 0 for o in turns[1:]]
            assert all(g > s for g, s in zip(grew, sent, strict=True)), (held, sent)


def test_conversation_input_tokens_per_turn_equal_the_chained_arms(agent_run: AgentRun) -> None:
    table = with_nonce_tokens(
        ObservationTable.from_observations(agent_run.observations), agent_run.meta.cache_nonces
    )
    index = {
        (table.arm[i], int(table.repeat[i]), int(table.turn[i])): i
        for i in range(len(table))
        if table.ok[i]
    }
    rows = np.array(sorted(index.values()), dtype=np.int64)
    billed = dict(zip(rows.tolist(), billed_tokens(table, rows)[0].tolist(), strict=True))
    compared = 0
    for (arm, rep, turn), i in index.items():
        if arm != "responses_conversation":
            continue
        assert billed[i] == billed[index[("responses_chained", rep, turn)]]
        compared += 1
    assert compared == 10


def test_the_run_leaves_no_conversation_or_stored_response_behind(agent_run: AgentRun) -> None:
    emulator = agent_run.server.app.emulator
    conversations = {o.conversation_id for o in agent_run.observations if o.conversation_id}
    stored = {o.response_id for o in agent_run.observations if o.response_id and o.arm in _STORING}
    assert len(conversations) == 4 and len(stored) == 30
    assert [c for c in conversations if emulator.conversations.get(c) is not None] == []
    assert [r for r in stored if emulator.store.get(r) is not None] == []
    assert agent_run.meta.conversations_deleted == 4
    assert agent_run.meta.stored_responses_deleted == 30


def test_the_summary_and_report_show_the_conversation_state(agent_run: AgentRun) -> None:
    summary = read_summary(agent_run.run_dir)
    scenario = summary.scenarios[0]
    assert "responses_conversation_vs_chat" in scenario.comparisons
    assert "responses_conversation_vs_responses_chained" in scenario.comparisons
    state = scenario.conversation_state
    assert state is not None and list(state.arms) == list(STATE_ARMS)
    conv = state.arms["responses_conversation"]
    assert conv.state == "conversation" and conv.lost_turns == 0
    assert conv.cache_claim is not None
    assert conv.cache_claim.metric == "responses_conversation_vs_chat.cache_hit_improvement"
    # turn 1 is cold, later turns find the growing prefix cached
    shares = [t.cached_share for t in conv.turns]
    assert shares[0] == 0.0 and all(s is not None and s > 0.5 for s in shares[1:])
    assert state.arms["chat"].cache_claim is None
    report = agent_run.run_dir.parent.parent / "reports" / agent_run.meta.run_id / "report.html"
    html = report.read_text(encoding="utf-8")
    assert "Conversation state" in html and "Cached share of the input by turn" in html


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def test_the_state_check_sees_items_sent_twice_and_a_conversation_that_forks(
    emulators: Emulators,
) -> None:
    """The agent run above only shows the check finding nothing: here a conversation is fed a
    resent message, then loses its first item on the server, and the check must say so."""
    server = emulators.start("zero")
    assert isinstance(server, EmulatorThread)
    emulator = server.app.emulator
    body = {"model": "gpt-4.1-mini", "temperature": 0, "max_output_tokens": 16, "store": True}

    async def three_turns() -> list[StateCheck]:
        transport = Transport(server.base_url, "sk-test")
        try:
            cid, failed = await open_conversation(transport, [])
            assert cid is not None and failed is None
            state, checks = ConversationState(), []
            for turn, sent in enumerate(
                ([_user("One.")], [_user("One."), _user("Two.")], [_user("Three.")]), 1
            ):
                if turn == 3:  # the server drops the conversation's first item
                    conversation = emulator.conversations.get(cid)
                    assert conversation is not None
                    conversation.items.pop(next(iter(conversation.items)))
                kwargs = {**body, "conversation": cid, "input": sent}
                reply = await transport.send("responses", kwargs, None)
                assert reply.ok, reply.error_message
                checks.append(
                    await state.after_turn(
                        transport,
                        conversation_id=cid,
                        response_id=reply.response_id,
                        sent=sent,
                        outputs=[],
                    )
                )
            return checks
        finally:
            await transport.aclose()

    checks = asyncio.run(three_turns())
    assert [(c.items_sent, c.items_held, c.duplicate_items, c.forked) for c in checks] == [
        (1, 2, 0, False),  # One. and its reply
        (2, 5, 1, False),  # One. sent again beside Two.: a duplicate, held twice
        (1, 6, 0, True),  # 5 − the lost first item + Three. + its reply: no longer extends
    ]
    assert all(c.state_check_error is None for c in checks)


# --- lost state ---------------------------------------------------------------------------------

LOST = """\
version: 1
name: lost
model: gpt-4.1-mini
arms: [chat, responses, responses_chained, responses_conversation]
repeats: 1
prompts:
  - id: p
    turns: ["One.", "Two.", "Three."]
"""


def test_a_lost_chain_or_conversation_ends_that_conversation_only(
    emulators: Emulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = emulators.start("zero")
    assert isinstance(server, EmulatorThread)
    emulator = server.app.emulator
    real_send = Transport.send
    sent: list[dict[str, Any]] = []

    async def forgetful(
        self: Transport, api: Any, kwargs: dict[str, Any], body: bytes | None = None
    ) -> Any:
        # the server loses the state just before turn 2 of each state-keeping arm
        if kwargs.get("previous_response_id"):
            emulator.store.delete(kwargs["previous_response_id"])
        if kwargs.get("conversation") and any(
            s.get("conversation") == kwargs["conversation"] for s in sent
        ):
            emulator.conversations.delete(kwargs["conversation"])
        sent.append(kwargs)
        return await real_send(self, api, kwargs, body)

    monkeypatch.setattr(Transport, "send", forgetful)
    scenario = tmp_path / "lost.yaml"
    scenario.write_text(LOST, encoding="utf-8")
    result = run(
        [scenario], RunOptions(target=server.base_url, out=tmp_path, seed=1, progress=False)
    )
    assert result.fatal is None and result.stopped_arms == {}
    obs = {(o.arm, o.turn): o for o in read_observations(result.run_dir / "observations.jsonl")}
    assert obs[("responses_chained", 2)].error_type == "previous_response_not_found"
    assert obs[("responses_conversation", 2)].status == 404
    for arm in ("responses_chained", "responses_conversation"):
        assert obs[(arm, 1)].ok
        lost = obs[(arm, 3)]
        assert (lost.ok, lost.error_type, lost.attempts) == (False, STATE_LOST, [])
        assert "not resent" in (lost.error_message or "")
    # nothing was resent without its state: three requests per stateless arm, two per state arm
    assert sum(1 for s in sent if s.get("previous_response_id")) == 1
    assert sum(1 for s in sent if s.get("conversation")) == 2
    for arm in ("chat", "responses"):
        assert all(obs[(arm, turn)].ok for turn in (1, 2, 3))


# --- refusal up front -----------------------------------------------------------------------------


def test_a_target_without_the_conversations_api_refuses_the_arm_before_sending() -> None:
    caps = emulator_capabilities("o4-mini")
    lacking = caps.model_copy(
        update={
            "target": "http://llama:8080/v1",
            "features": {
                **caps.features,
                "conversations": Feature(supported=False, detail="POST /conversations → 404"),
            },
        }
    )
    plans = [build_plan(load_scenario(AGENT), repeats=1)]
    with pytest.raises(TargetError) as caught:
        check_plans(plans, lacking, skip_unsupported=False)
    text = str(caught.value)
    assert "conversations unsupported (POST /conversations → 404)" in text
    assert re.search(r"→ arm responses_conversation(\+store)? cannot run \(and 1 more\)", text)
    kept, skipped = check_plans(plans, lacking, skip_unsupported=True)
    assert {c.arm for c in kept[0].conversations} == set(STATE_ARMS) - {
        "responses_conversation",
        "responses_conversation+store",
    }
    assert set(skipped) == {
        "agent-tool-loop: arm responses_conversation",
        "agent-tool-loop: arm responses_conversation+store",
    }


# --- Ctrl-C ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_still_deletes_what_the_run_created(emulators: Emulators, tmp_path: Path) -> None:
    server = emulators.start("parity", time_scale=0.05)
    assert isinstance(server, EmulatorThread)
    out = tmp_path / "runs"
    cmd = [
        *(sys.executable, "-m", "harness", "run", str(AGENT), "--target", server.base_url),
        *("--repeats", "6", "--seed", "2", "--out", str(out), "--quiet"),
    ]
    log = tmp_path / "stdout.txt"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            files = list(out.glob("*/observations.jsonl"))
            if (
                files
                and sum(1 for o in read_observations(files[0]) if o.conversation_id and o.ok) >= 3
            ):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 130, log.read_text()
    run_dir = next(out.iterdir())
    observations = list(read_observations(run_dir / "observations.jsonl"))
    conversations = {o.conversation_id for o in observations if o.conversation_id}
    stored = {o.response_id for o in observations if o.response_id and o.arm in _STORING}
    emulator = server.app.emulator
    assert conversations and stored
    assert [c for c in conversations if emulator.conversations.get(c) is not None] == []
    assert [r for r in stored if emulator.store.get(r) is not None] == []
    meta = read_meta(run_dir)
    assert meta.finished_at is None
    assert (meta.conversations_deleted or 0) >= len(conversations)


_STORING = frozenset({"responses+store", "responses_chained", "responses_conversation+store"})


# --- every command knows the state arms -----------------------------------------------------


def test_gate_compare_and_plan_know_the_state_arms(
    agent_run: AgentRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gates.yaml"
    config.write_text(
        "version: 1\ngates:\n"
        "  responses_conversation_vs_responses_chained.cost_ratio_max: 1.05\n"
        "  responses_conversation+store.error_rate_max: 0.5\n"
        "  responses+no_reasoning_vs_responses.similarity_mean_min: 0.1\n",
        encoding="utf-8",
    )
    reports = agent_run.run_dir.parent.parent / "reports"
    code = main(
        ["gate", str(agent_run.run_dir), "--config", str(config), "--reports", str(reports)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    for key in (
        "responses_conversation_vs_responses_chained.cost_ratio_max",
        "responses_conversation+store.error_rate_max",
        "responses+no_reasoning_vs_responses.similarity_mean_min",
    ):
        assert key in out
    run_dir = str(agent_run.run_dir)
    assert main(["compare", run_dir, run_dir, "--out", str(tmp_path)]) == 0
    compared = (tmp_path / "compare.md").read_text(encoding="utf-8")
    assert "responses_conversation+store" in compared
    capsys.readouterr()
    assert main(["plan", str(AGENT), "--repeats", "1", "--json"]) == 0
    planned = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    conv = [p for p in planned if p.get("arm") == "responses_conversation"]
    assert conv and all(p["state"] == "conversation" for p in conv)
    # turn 1 creates the conversation with the fixed history, then sends only the tool result
    first = next(p for p in conv if p["turn"] == 1)
    assert [i.get("type", "message") for i in first["conversation_create"]["items"]] == [
        "message",
        "function_call",
    ]
    assert first["kwargs"]["conversation"] == "<conversation created at turn 1>"
    assert [i["type"] for i in first["kwargs"]["input"]] == ["function_call_output"]
    assert all("conversation_create" not in p for p in conv if p["turn"] > 1)


@pytest.mark.parametrize("client", ["sdk", "raw"])
def test_a_long_fixed_history_seeds_the_conversation_twenty_items_at_a_time(
    client: Literal["sdk", "raw"], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int]] = []
    real_create, real_add = Transport.create_conversation, Transport.add_conversation_items

    async def create(self: Transport, items: list[dict[str, Any]]) -> Any:
        calls.append(("create", len(items)))
        return await real_create(self, items)

    async def add(self: Transport, cid: str, items: list[dict[str, Any]]) -> Any:
        calls.append(("add", len(items)))
        return await real_add(self, cid, items)

    monkeypatch.setattr(Transport, "create_conversation", create)
    monkeypatch.setattr(Transport, "add_conversation_items", add)
    history = "".join(
        f"      - {{role: user, content: 'Question {i}?'}}\n"
        f"      - {{role: assistant, content: 'Answer {i}.'}}\n"
        for i in range(23)
    )
    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        "version: 1\nname: long\nmodel: gpt-4.1-mini\narms: [responses_conversation]\n"
        "repeats: 1\nsystem: Be brief.\nprompts:\n  - id: p\n    messages:\n"
        f"{history}    turns: ['And now?', 'Thanks.']\n",
        encoding="utf-8",
    )
    options = RunOptions(
        emulator_profile="zero", out=tmp_path, seed=1, progress=False, client=client
    )
    result = run([scenario], options)
    obs = sorted(read_observations(result.run_dir / "observations.jsonl"), key=lambda o: o.turn)
    assert [o.ok for o in obs] == [True, True]
    # 46 history items: 20 with the create call, then 20 and 6 added
    assert calls == [("create", 20), ("add", 20), ("add", 6)]
    # turn 1 sent only its user message; the server holds the history, it and the reply
    assert [o.items_sent for o in obs] == [1, 1]
    assert [o.items_held for o in obs] == [48, 50]
    assert all(o.duplicate_items == 0 and o.forked is False for o in obs)


def test_a_server_refusing_conversations_stops_that_arm_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(self: Transport, items: list[dict[str, Any]]) -> StateReply:
        return StateReply(False, 404, "http_404", "Not Found")

    monkeypatch.setattr(Transport, "create_conversation", refuse)
    scenario = tmp_path / "lost.yaml"
    scenario.write_text(LOST.replace("repeats: 1", "repeats: 2"), encoding="utf-8")
    result = run(
        [scenario], RunOptions(emulator_profile="zero", out=tmp_path, seed=1, progress=False)
    )
    assert result.fatal is None
    assert list(result.stopped_arms) == [("lost", "responses_conversation")]
    stopped = result.stopped_arms[("lost", "responses_conversation")]
    assert (stopped.status, stopped.turn) == (404, 1)
    obs = list(read_observations(result.run_dir / "observations.jsonl"))
    refused = [o for o in obs if o.arm == "responses_conversation"]
    assert [(o.turn, o.error_type) for o in refused] == [(1, "conversation_error")]
    assert "conversations.create failed: 404" in (refused[0].error_message or "")
    assert all(o.ok for o in obs if o.arm != "responses_conversation")
    assert len([o for o in obs if o.arm != "responses_conversation"]) == 3 * 3 * 2


def test_a_chain_listing_only_its_own_input_reports_no_fork_check_not_a_pass(
    agent_run: AgentRun,
) -> None:
    """The emulator's input_items lists a chained response's own input only: whether the chain
    forked cannot be seen there, so it is None (the report's "—"), never a reassuring False."""
    chained = [o for o in agent_run.by_arm("responses_chained").values() if o.ok]
    assert chained and all(o.forked is None for o in chained)
    assert all(o.items_held is not None and o.items_held > o.items_sent for o in chained if o.turn)
