"""The harness against a real server: llama.cpp's llama-server with Gemma 3 270M (DESIGN §9).

What the emulator claims about the wire is checked here against a server we did not write:
every shipped scenario runs through every arm the server can serve with zero failed requests,
warm turns report cached tokens, and the arm it cannot serve is refused before anything is sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.records import NOT_SENT
from harness.rundir import read_observations
from harness.runner.capabilities import probe_capabilities

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))

pytestmark = pytest.mark.usefixtures("no_key")


def test_probe_finds_what_llama_server_serves(llama_server: str) -> None:
    found = probe_capabilities(llama_server, "none").features
    served = {name for name, f in found.items() if f.supported}
    assert {"chat", "chat_stream", "chat_stream_usage", "responses", "responses_stream"} <= served
    assert found["previous_response_id"].supported is False
    assert "previous_response_id" in found["previous_response_id"].detail
    assert found["cached_tokens"].supported, found["cached_tokens"].detail


def test_an_arm_the_server_cannot_serve_is_refused_before_sending(
    llama_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    code = main(
        [
            "run",
            str(REPO / "scenarios/support_bot.yaml"),
            "--target",
            llama_server,
            "--quiet",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    # the chained arm needs store and previous_response_id; llama-server has neither (404 on
    # GET /responses/{id}, 400 on previous_response_id): the first one found is named
    assert "arm responses_chained cannot" in err
    assert "store unsupported" in err or "previous_response_id unsupported" in err
    assert not out.exists()


#: Gemma 3 270M often talks until the limit (2,000 tokens on batch_summarization): short
#: outputs keep the tier at a few seconds a request on 2 CPU cores.
MAX_OUTPUT_TOKENS = "24"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_runs_without_a_failed_request(
    scenario: Path, llama_server: str, tmp_path: Path
) -> None:
    out, reports = tmp_path / "runs", tmp_path / "reports"
    argv = [
        "run",
        str(scenario),
        "--target",
        llama_server,
        "--repeats",
        "1",
        "--skip-unsupported",
        "--max-output-tokens",
        MAX_OUTPUT_TOKENS,
        "--quiet",
        "--out",
        str(out),
        "--concurrency",
        "2",
    ]
    assert main(argv) == 0
    (run_dir,) = out.iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    rows = list(read_observations(run_dir / "observations.jsonl"))
    # "not_sent": a planned tool-result turn after the model made no tool call (no request)
    failed = [
        (r.arm, r.turn, r.status, r.error_message)
        for r in rows
        if not r.ok and r.error_type != NOT_SENT
    ]
    assert not failed, failed
    assert len(rows) == meta["planned_requests"]
    if not rows:  # everything needs a feature the server lacks (images): said so, up front
        assert meta["skipped"], meta
        return
    assert {r.arm for r in rows} >= {"chat"}
    warm = [r for r in rows if r.turn > 1 and r.usage is not None]
    if warm:  # multi-turn: the shared prefix is cached on later turns
        assert any(r.usage.cached_tokens > 0 for r in warm if r.usage), [
            (r.arm, r.turn, r.usage) for r in warm
        ]
    assert (run_dir / "summary.json").exists()
    assert "<html" in (reports / run_dir.name / "report.html").read_text()[:2000].lower()
