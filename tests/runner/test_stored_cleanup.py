"""What a run stores at the provider (responses, chat completions sent with ``store: true``) it
deletes when it ends, through either client, counted in meta.json; ``--keep-stored`` leaves it
all; cassettes record the deletes with their scenario, so a replay needs nothing unrecorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from harness.cli.app import main
from harness.records import Observation
from harness.report import render_report
from harness.rundir import read_meta, read_observations, write_meta
from harness.runner.execute import RunOptions, run, stored_by
from harness.runner.plan import build_plan
from harness.scenario.load import load_scenario
from harness.transport.client import ClientKind

SCENARIO = """\
version: 1
name: stored
model: gpt-4.1-mini
defaults: {store: true, max_output_tokens: 16}
arms: [chat, responses, "chat#2"]
repeats: 2
system: You are terse.
prompts:
  - id: t
    turns: [Hello there, And again?]
"""
#: per arm: 1 prompt x 2 turns x 2 repeats
PER_ARM = 4


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "stored.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def _listed(client: openai.OpenAI) -> set[str]:
    """Every stored chat completion the server lists (all pages)."""
    return {c.id for c in client.chat.completions.list(limit=100)}


def _ids(run_dir: Path, api: str) -> set[str]:
    obs: list[Observation] = list(read_observations(run_dir / "observations.jsonl"))
    assert obs and all(o.ok for o in obs)
    return {o.response_id for o in obs if o.api == api and o.response_id}


@pytest.mark.parametrize("client", ["sdk", "raw"])
def test_a_run_deletes_the_chat_completions_it_stored(
    client: ClientKind, scenario: Path, tmp_path: Path, emulators: Any
) -> None:
    server = emulators.start("zero")
    sdk = emulators.client(server)
    result = run(
        [scenario],
        RunOptions(target=server.base_url, out=tmp_path, seed=5, client=client, progress=False),
    )
    chat = _ids(result.run_dir, "chat")
    assert len(chat) == 2 * PER_ARM  # chat and chat#2
    assert not _listed(sdk) & chat and _listed(sdk) == set()
    for cid in chat:
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.retrieve(cid)
    meta = read_meta(result.run_dir)
    assert meta.stored_chat_completions_deleted == 2 * PER_ARM
    assert meta.stored_responses_deleted == PER_ARM
    assert not meta.keep_stored
    if client == "sdk":  # the report names both counts
        html = render_report(result.run_dir, tmp_path / "report").html.read_text(encoding="utf-8")
        assert "<th>Stored chat completions deleted</th><td>8</td>" in html
        assert "<th>Stored responses deleted</th><td>4</td>" in html
        assert "--keep-stored" not in html


def test_keep_stored_leaves_every_stored_completion_and_response(
    scenario: Path, tmp_path: Path, emulators: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server = emulators.start("zero")
    sdk = emulators.client(server)
    code = main(
        [
            "run",
            str(scenario),
            "--target",
            server.base_url,
            "--out",
            str(tmp_path),
            "--seed",
            "5",
            "--keep-stored",
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "meta.json").is_file()]
    chat = _ids(run_dir, "chat")
    assert _listed(sdk) == chat and len(chat) == 2 * PER_ARM
    for rid in _ids(run_dir, "responses"):
        assert sdk.responses.retrieve(rid).id == rid
    meta = read_meta(run_dir)
    assert meta.keep_stored
    assert meta.stored_chat_completions_deleted is None and meta.stored_responses_deleted is None
    (html,) = tmp_path.parent.glob(f"**/{run_dir.name}/report.html")
    text = html.read_text(encoding="utf-8")
    assert "kept at the provider (<code>--keep-stored</code>)" in text
    assert "deleted</th>" not in text


def test_a_run_without_store_sends_no_chat_delete(tmp_path: Path, emulators: Any) -> None:
    server = emulators.start("zero")
    scenario = tmp_path / "plain.yaml"
    scenario.write_text(SCENARIO.replace("store: true, ", ""), encoding="utf-8")
    result = run(
        [scenario], RunOptions(target=server.base_url, out=tmp_path, seed=5, progress=False)
    )
    assert _ids(result.run_dir, "chat")
    meta = read_meta(result.run_dir)
    # nothing stored on the chat arms: no field, rather than a count of deletes never needed
    assert meta.stored_chat_completions_deleted is None
    assert _listed(emulators.client(server)) == set()


def test_a_replay_plays_the_recorded_deletes_with_their_scenario(
    scenario: Path, tmp_path: Path, emulators: Any
) -> None:
    cassettes = tmp_path / "cassettes"
    with emulators.running("zero") as server:
        recorded = run(
            [scenario],
            RunOptions(
                target=server.base_url,
                out=tmp_path / "runs",
                seed=5,
                progress=False,
                record=cassettes,
            ),
        )
    assert read_meta(recorded.run_dir).stored_chat_completions_deleted == 2 * PER_ARM
    text = (cassettes / "stored.yaml").read_text(encoding="utf-8")
    assert text.count("method: DELETE") == 3 * PER_ARM
    replayed = run([scenario], RunOptions(out=tmp_path / "runs", progress=False, replay=cassettes))
    assert replayed.replay is not None
    cassette = replayed.replay.cassette
    assert cassette.misses == []
    # each delete is the scenario's own interaction (not a shared one) and was played
    assert cassette.unplayed("stored") == []
    deletes = [e for e in cassette.entries if e.request.method == "DELETE"]
    assert len(deletes) == 3 * PER_ARM and {e.scenario for e in deletes} == {"stored"}
    meta = read_meta(replayed.run_dir)
    assert meta.stored_chat_completions_deleted == 2 * PER_ARM
    assert meta.stored_responses_deleted == PER_ARM


def test_a_resume_deletes_the_completions_of_the_conversations_it_redoes(
    scenario: Path, tmp_path: Path, emulators: Any
) -> None:
    """A run killed before its clean-up left everything stored; the resume redoes an incomplete
    chat conversation and deletes what that conversation stored before, with its own."""
    server = emulators.start("zero")
    sdk = emulators.client(server)
    first = run(
        [scenario],
        RunOptions(target=server.base_url, out=tmp_path, seed=5, keep_stored=True, progress=False),
    )
    meta = read_meta(first.run_dir)
    write_meta(first.run_dir, meta.model_copy(update={"keep_stored": False}))  # killed, not kept
    path = first.run_dir / "observations.jsonl"
    obs = list(read_observations(path))
    torn = next(o for o in obs if o.arm == "chat" and o.turn == 2)
    orphan = {o.response_id for o in obs if o.conversation == torn.conversation and o.turn == 1}
    path.write_text(
        "".join(o.model_dump_json() + "\n" for o in obs if o is not torn), encoding="utf-8"
    )
    before = _listed(sdk)
    assert orphan <= before and len(before) == 2 * PER_ARM

    resumed = run([], RunOptions(resume=first.run_dir, progress=False))
    redone = {
        o.response_id
        for o in read_observations(path)
        if o.conversation == torn.conversation and o.response_id
    }
    assert len(redone) == 2 and not redone & orphan
    assert _listed(sdk) == before - orphan
    assert read_meta(resumed.run_dir).stored_chat_completions_deleted == 3


def test_a_cassette_without_the_deletes_replays_every_request(
    scenario: Path, tmp_path: Path, emulators: Any
) -> None:
    """Recorded with --keep-stored (or before chat completions were deleted): the replay's
    deletes find nothing to play, which fails no observation and confirms no delete."""
    cassettes = tmp_path / "cassettes"
    with emulators.running("zero") as server:
        run(
            [scenario],
            RunOptions(
                target=server.base_url,
                out=tmp_path / "runs",
                seed=5,
                keep_stored=True,
                progress=False,
                record=cassettes,
            ),
        )
    assert "method: DELETE" not in (cassettes / "stored.yaml").read_text(encoding="utf-8")
    replayed = run([scenario], RunOptions(out=tmp_path / "runs", progress=False, replay=cassettes))
    assert replayed.errors == 0 and replayed.replay is not None
    assert len(replayed.replay.cassette.misses) == 3 * PER_ARM
    assert replayed.replay.cassette.unplayed("stored") == []
    meta = read_meta(replayed.run_dir)
    assert (meta.stored_chat_completions_deleted, meta.stored_responses_deleted) == (0, 0)


@pytest.mark.parametrize(
    ("store", "expected"),
    [(True, {"chat", "responses"}), (False, {"responses"})],
)
def test_what_a_torn_conversation_may_have_stored(
    store: bool, expected: set[str], tmp_path: Path
) -> None:
    """A resume's discarded conversations and a dead Ray worker's: every response, and chat
    completions only where the chat conversation sent store: true."""
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("store: true", f"store: {str(store).lower()}"), "utf-8")
    plan = build_plan(load_scenario(path), repeats=1, seed=1)
    conv = {c.arm: c for c in plan.conversations}
    obs = [
        Observation.model_construct(
            arm=arm, api=conv[arm].api, conversation=conv[arm].conversation, response_id=rid
        )
        for arm, rid in (("chat", "chatcmpl-1"), ("responses", "resp_1"), ("responses", None))
    ]
    assert {arm for arm, _ in stored_by(obs, plan.conversations)} == expected
    assert stored_by(obs, []) == [("responses", "resp_1")]
