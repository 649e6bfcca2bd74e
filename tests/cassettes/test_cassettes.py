"""Cassettes: record a run once, replay it offline with the same observations and summary."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import vcr
import yaml

from harness.cassettes import replay as cas
from harness.cli.app import main
from harness.records import Observation
from harness.rundir import read_meta, read_observations
from harness.runner.execute import RunOptions, RunResult, run
from harness.scenario.load import load_scenario

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "scenarios" / "quickstart.yaml"
SECRET = "sk-test-SECRET123"
#: differ between a recording and its replay by nature
#: run_id, clock and replay flag differ by design; the loop monitor watches the live client
#: only (a cassette keeps the wire timings, not the recording client's loop lag)
VOLATILE = {"run_id", "started_at", "replayed", "loop_lag_ms", "saturated"}


def _obs(result: RunResult) -> list[Observation]:
    return list(read_observations(result.run_dir / "observations.jsonl"))


def _comparable(o: Observation) -> dict[str, Any]:
    return o.model_dump(exclude=VOLATILE)


#: streams that take a few ms, so a buffered recording would show in the SDK clock
PROFILE = """
extends: zero
both: {per_token_ms: 1}
content:
  reply_tokens: {min: 15, max: 25}
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult]:
    """quickstart recorded from the emulator (which is stopped when run() returns)."""
    root = tmp_path_factory.mktemp("recorded")
    profile = root / "profile.yaml"
    profile.write_text(PROFILE, encoding="utf-8")
    result = run(
        [QUICK],
        RunOptions(
            out=root / "runs",
            repeats=2,
            seed=7,
            progress=False,
            emulator_profile=str(profile),
            record=root / "cassettes",
        ),
    )
    return root / "cassettes", result


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Fail any connection at all, loopback included: a replay must never open a socket."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError(f"replay opened a socket to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts


@pytest.fixture
def no_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a replay must not start an emulator")

    monkeypatch.setattr("harness.emulator.server.EmulatorProcess.__enter__", refuse)


def _replay(cassettes: Path, tmp_path: Path, **kw: Any) -> RunResult:
    return run([QUICK], RunOptions(out=tmp_path / "replay", progress=False, replay=cassettes, **kw))


# --- the done criterion ------------------------------------------------------------------------


def test_replay_gives_identical_observations_and_summary(
    recorded: tuple[Path, RunResult], tmp_path: Path, no_sockets: list[object], no_emulator: None
) -> None:
    cassettes, live = recorded
    replayed = _replay(cassettes, tmp_path)
    a, b = _obs(live), _obs(replayed)
    assert len(a) == len(b) == 24 and all(o.ok for o in a)
    # recording did not buffer replies: the SDK saw the first token long before the last byte
    # (vcrpy's own stub would put the SDK's TTFT after the wire total)
    early = [
        o.sdk_ttft_ms < o.total_ms
        for o in a
        if o.sdk_ttft_ms is not None and o.total_ms is not None
    ]
    assert len(early) == 24 and sum(early) >= 20
    assert [_comparable(o) for o in a] == [_comparable(o) for o in b]
    assert all(o.replayed for o in b) and not any(o.replayed for o in a)
    # the figures that matter, spelled out: timings are the recorded wire clock, not replay's
    for x, y in zip(a, b, strict=True):
        assert (x.ttfb_ms, x.ttft_ms, x.total_ms, x.events) == (
            y.ttfb_ms,
            y.ttft_ms,
            y.total_ms,
            y.events,
        )
        assert x.usage == y.usage and x.output_text == y.output_text
        assert x.request_id == y.request_id and x.processing_ms == y.processing_ms
    assert no_sockets == []
    meta = read_meta(replayed.run_dir)
    assert meta.replayed_from == str(cassettes) and meta.seed == 7
    assert meta.is_emulator and "not OpenAI" in meta.target_label
    assert meta.cache_nonces == read_meta(live.run_dir).cache_nonces
    assert replayed.replay is not None and replayed.replay.cassette.misses == []
    assert replayed.replay.cassette.unplayed("quickstart") == []

    analyze = pytest.importorskip("harness.analysis.analyze")
    s1 = analyze.analyze_run(live.run_dir, resamples=200).model_dump(mode="json")
    s2 = analyze.analyze_run(replayed.run_dir, resamples=200).model_dump(mode="json")

    def strip(s: dict[str, Any]) -> dict[str, Any]:
        # the live client's loop figures (and warnings drawn from them) are not in a cassette
        for sc in s["scenarios"]:
            for arm in sc["arms"].values():
                arm.pop("saturation")
        s["warnings"] = [w for w in s["warnings"] if "event loop" not in w]
        return {
            k: v
            for k, v in s.items()
            if k not in ("run_id", "created_at", "analyzed_at", "generated_at", "replay")
        }

    assert strip(s1) == strip(s2)
    # only the replay says where its replies came from
    assert s1["replay"] == [] and [c["cassette"] for c in s2["replay"]] == [
        str(cassettes / "quickstart.yaml")
    ]


def test_raw_client_and_concurrency_replay_the_same_cassette(
    recorded: tuple[Path, RunResult], tmp_path: Path, no_sockets: list[object]
) -> None:
    cassettes, live = recorded
    replayed = _replay(cassettes, tmp_path, client="raw", concurrency=6)
    by_key = {o.key: o for o in _obs(live)}
    got = _obs(replayed)
    assert len(got) == len(by_key) and all(o.ok and o.replayed for o in got)
    for o in got:
        ref = by_key[o.key]
        assert (o.output_text, o.usage, o.ttft_ms, o.total_ms, o.request_id) == (
            ref.output_text,
            ref.usage,
            ref.ttft_ms,
            ref.total_ms,
            ref.request_id,
        )


# --- cassette contents -------------------------------------------------------------------------


def test_cassette_is_readable_yaml_with_metadata(recorded: tuple[Path, RunResult]) -> None:
    cassettes, live = recorded
    path = cassettes / "quickstart.yaml"
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    meta = data["metadata"]
    assert meta["recorded_from"] == "emulator (not OpenAI)" and meta["is_emulator"]
    assert meta["emulator_profile"] and meta["seed"] == 7
    assert meta["harness_version"] and meta["scenario"] == "quickstart"
    assert meta["scenario_sha256"] == read_meta(live.run_dir).scenarios[0]["sha256"]
    assert meta["cache_nonces"] == read_meta(live.run_dir).cache_nonces
    posts = [i for i in data["interactions"] if i["request"]["method"] == "POST"]
    assert len(posts) == 24
    assert "      string: |" in text  # SSE bodies as literal blocks
    for item in posts:
        body = item["response"]["body"]["string"]
        assert body.startswith(("data: ", "event: ")) and body.endswith("\n\n")
        assert "content-encoding" not in item["response"]["headers"]
        timing = item["response"]["timing"]
        assert 0 < timing["ttfb_ms"] <= timing["ttft_ms"] <= timing["total_ms"]
        assert timing["events"] == len(timing["event_ms"]) > 2
        assert timing["event_ms"][-1] == pytest.approx(timing["total_ms"], abs=1.0)
    shared = [i for i in data["interactions"] if i["response"].get("shared")]
    assert {i["request"]["uri"].rsplit("/", 1)[1] for i in shared} == {"models"}


def test_no_secret_reaches_cassettes_runs_or_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulators: Any
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-SECRET123")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-SECRET123")
    with emulators.running("zero") as emu:
        result = run(
            [QUICK],
            RunOptions(
                target=emu.base_url,
                out=tmp_path / "runs",
                repeats=1,
                seed=3,
                progress=False,
                record=tmp_path / "cassettes",
            ),
        )
    assert result.errors == 0

    # responses: a server that sets cookies and names the organisation (vcrpy's filter_headers
    # scrubs requests only)
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            json={"ok": True},
            headers={
                "set-cookie": f"session={SECRET}",
                "openai-organization": "org-SECRET123",
                "openai-project": "proj-SECRET123",
                "x-request-id": "req_1",
            },
        )

    async def call() -> None:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as client:
            await client.post(
                "https://api.openai.com/v1/responses",
                json={"input": "x"},
                headers={
                    "authorization": f"Bearer {SECRET}",
                    "cookie": f"k={SECRET}",
                    "api-key": SECRET,
                },
            )

    import asyncio

    with vcr.VCR().use_cassette(str(tmp_path / "cassettes" / "mock.yaml"), **cas.vcr_config()):
        asyncio.run(call())
    mock = (tmp_path / "cassettes" / "mock.yaml").read_text(encoding="utf-8")
    assert "req_1" in mock and "set-cookie" not in mock.lower()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    files += [
        p
        for d in ("cassettes", "runs", "reports")
        if (REPO / d).is_dir()
        for p in (REPO / d).rglob("*")
        if p.is_file()
    ]
    assert any(p.suffix == ".yaml" for p in files) and any(p.suffix == ".jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in (SECRET, "SECRET123"):
            assert secret.encode() not in data, f"{secret} leaked into {path}"


# --- matching ----------------------------------------------------------------------------------


def _req(body: str, method: str = "POST", host: str = "http://127.0.0.1:1") -> vcr.request.Request:
    return vcr.request.Request(method, f"{host}/v1/responses", body, {})


def _resp(text: str) -> dict[str, Any]:
    return {
        "status": {"code": 200, "message": "OK"},
        "headers": {},
        "body": {"string": text.encode()},
        "timing": {"ttfb_ms": 1.5, "total_ms": 2.0},
    }


def test_matching_is_canonical_indexed_and_replays_repeats_in_order(tmp_path: Path) -> None:
    cassette = cas.RunCassette(tmp_path, record=False)
    cassette.add(
        "s",
        tmp_path / "s.yaml",
        [
            (_req('{"a": 1, "b": [1, 2]}'), _resp("first")),
            (_req('{"b":[1,2],"a":1}'), _resp("second")),
            (_req('{"a": 2}'), _resp("other")),
        ],
    )
    # other host and port (an emulator's port changes), other key order and whitespace
    same = _req('{\n  "b": [1, 2],\n  "a": 1\n}', host="https://api.openai.com")
    with cas.scenario_scope("s"):
        played = []
        for _ in range(2):
            assert cassette.can_play_response_for(same)
            played.append(cassette.play_response(same)["body"]["string"])
        assert played == [b"first", b"second"]
        with pytest.raises(
            cas.CassetteMiss,
            match=r"s\.yaml has no unplayed interaction for "
            r"POST /v1/responses body sha256:[0-9a-f]{12}",
        ):
            cassette.can_play_response_for(same)
        with pytest.raises(cas.CassetteMiss):  # method is part of the key
            cassette.can_play_response_for(_req('{"a": 2}', method="PUT"))
    # scenarios do not see each other's interactions
    with cas.scenario_scope("another"), pytest.raises(cas.CassetteMiss):
        cassette.can_play_response_for(_req('{"a": 2}'))
    assert [e.played for e in cassette.entries] == [1, 1, 0]
    assert (
        cas.canonical_body('{"b": 1, "a": [1, {"d": 0, "c": 1}]}')
        == b'{"a":[1,{"c":1,"d":0}],"b":1}'
    )


def test_missing_interaction_fails_only_that_request(
    recorded: tuple[Path, RunResult], tmp_path: Path, no_sockets: list[object]
) -> None:
    cassettes, live = recorded
    broken = tmp_path / "broken"
    shutil.copytree(cassettes, broken)
    path = broken / "quickstart.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    victim = next(o for o in _obs(live) if o.turn == 1 and o.api == "responses")
    items = data["interactions"]
    drop = next(
        i
        for i, it in enumerate(items)
        if victim.request_id in str(it["response"]["headers"].get("x-request-id"))
    )
    del items[drop]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    result = _replay(broken, tmp_path)
    obs = _obs(result)
    assert len(obs) == len(_obs(live))  # one observation per planned request, still
    missed = [o for o in obs if o.error_type == "cassette_miss"]
    assert len(missed) == 1 and missed[0].key == victim.key
    message = missed[0].error_message or ""
    assert str(path) in message and "POST /v1/responses body sha256:" in message
    assert len(missed[0].attempts) == 1 and not missed[0].replayed  # not retried, not faked
    later = [o for o in obs if o.conversation == victim.conversation and o.turn > 1]
    assert later and all(o.error_type == "skipped" for o in later)
    assert sum(o.ok for o in obs) == len(obs) - 1 - len(later)
    assert no_sockets == []


# --- CLI ---------------------------------------------------------------------------------------


def test_shipped_cassettes_replay_quickstart_offline(
    tmp_path: Path,
    no_sockets: list[object],
    no_emulator: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["run", str(QUICK), "--replay", str(REPO / "cassettes"), "--quiet", "--out", str(tmp_path)]
    )
    assert code == 0
    # the replay says what it plays, and how that was recorded (a live quickstart differs)
    out = " ".join(capsys.readouterr().out.split())
    assert f"replay of {REPO / 'cassettes' / 'quickstart.yaml'}, recorded " in out
    assert "against emulator — not OpenAI (profile parity, time scale 1, 5 repeats)" in out
    (run_dir,) = tmp_path.iterdir()
    obs = list(read_observations(run_dir / "observations.jsonl"))
    assert obs and all(o.ok and o.replayed for o in obs)
    meta = read_meta(run_dir)
    recorded = yaml.safe_load((REPO / "cassettes" / "quickstart.yaml").read_text())["metadata"]
    assert meta.seed == recorded["seed"] and meta.is_emulator


def test_shipped_cassettes_are_clean(
    capsys: pytest.CaptureFixture[str], no_sockets: list[object]
) -> None:
    code = main(
        ["cassettes", "check", str(REPO / "cassettes"), "--scenarios", str(REPO / "scenarios")]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    names = {load_scenario(p).name for p in (REPO / "scenarios").glob("*.yaml")}
    assert {
        line.split(":")[0].rsplit("/", 1)[1][:-5]
        for line in out.splitlines()
        if line.startswith(str(REPO))
    } == names
    # 10 conversations per arm and scenario, the fewest that give verdicts: ~14 MB; plus the
    # agent scenario's seven state arms at 2 repeats (~4 MB, see cassettes/record.sh)
    total = sum(p.stat().st_size for p in (REPO / "cassettes").glob("*.yaml"))
    assert total < 18_000_000


def test_check_reports_stale_missing_and_unused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    scenario = scenarios / "tiny.yaml"
    scenario.write_text(
        "version: 1\nname: tiny\nmodel: gpt-4.1-mini\narms: [chat, responses]\n"
        "repeats: 2\nsystem: You are terse.\n"
        "prompts:\n  - id: a\n    input: Hello there\n",
        encoding="utf-8",
    )
    cassettes = tmp_path / "cassettes"
    assert (
        main(
            [
                "run",
                str(scenario),
                "--record",
                str(cassettes),
                "--seed",
                "4",
                "--quiet",
                "--emulator-profile",
                "zero",
                "--out",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["cassettes", "check", str(cassettes), "--scenarios", str(scenarios)]) == 0
    assert "ok — scenario tiny, 4/4 interactions played" in capsys.readouterr().out

    scenario.write_text(scenario.read_text().replace("Hello there", "Hello again"))
    (cassettes / "orphan.yaml").write_text((cassettes / "tiny.yaml").read_text())
    assert main(["cassettes", "check", str(cassettes), "--scenarios", str(scenarios)]) == 1
    out = capsys.readouterr().out
    assert "stale: scenario changed since recording" in out
    rerecord = f"re-record with: harness run {scenario} --record {cassettes} --seed 4"
    assert out.count(rerecord) == 1  # the orphan has no scenario to record
    assert out.count("missing: tiny/a/") == 4  # 2 arms × 2 repeats, one turn each
    assert out.count("unused: POST /v1/") == 4 + 4  # tiny.yaml's and the orphan's
    assert "scenario tiny replays from" in out and "orphan.yaml: PROBLEMS" in out

    assert main(["cassettes", "check", str(tmp_path / "nope"), "--scenarios", str(scenarios)]) == 2


def test_replay_refuses_bad_input(
    recorded: tuple[Path, RunResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cassettes, _ = recorded
    assert (
        main(
            [
                "run",
                str(QUICK),
                "--replay",
                str(cassettes),
                "--seed",
                "8",
                "--quiet",
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "recorded with seed 7" in capsys.readouterr().err
    other = REPO / "scenarios" / "image_question.yaml"
    assert (
        main(["run", str(other), "--replay", str(cassettes), "--quiet", "--out", str(tmp_path)])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no cassette for scenario 'image-question'" in err[0]
    with pytest.raises(SystemExit):
        main(["run", str(QUICK), "--replay", str(cassettes), "--record", str(tmp_path)])


# --- pytest vocabulary -------------------------------------------------------------------------


def test_vcr_config_works_for_a_users_own_vcr_fixture(tmp_path: Path, emulators: Any) -> None:
    """What a pytest-recording ``vcr_config`` fixture returning ``vcr_config()`` does."""
    path = str(tmp_path / "user.yaml")

    def ask(base_url: str, body: dict[str, Any]) -> str:
        client = openai.OpenAI(base_url=base_url, api_key=SECRET, max_retries=0)
        reply = client.responses.create(**body)
        return reply.output_text

    body = {"model": "gpt-4.1-mini", "input": "Say hi", "max_output_tokens": 32}
    with (
        emulators.running("zero") as emu,
        vcr.VCR(record_mode="once").use_cassette(path, **cas.vcr_config()),
    ):
        first = ask(emu.base_url, body)
    text = Path(path).read_text(encoding="utf-8")
    assert SECRET not in text and "x-stainless" not in text
    # replay: other key order, emulator gone, record mode none
    reordered = dict(reversed(list(body.items())))
    with vcr.VCR(record_mode="none").use_cassette(path, **cas.vcr_config()) as cassette:
        assert ask("http://127.0.0.1:9/v1", reordered) == first
        assert cassette.all_played
    assert (
        json.loads(yaml.safe_load(text)["interactions"][0]["request"]["body"])["input"] == "Say hi"
    )
