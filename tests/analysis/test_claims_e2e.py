"""The migration guide's claims, end to end: emulator profile → harness run → summary verdicts.

The emulator injects known effects; the harness must recover them from the wire (it never reads
the emulator's truth log) and judge the claims by their 95 % intervals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from harness.analysis.analyze import analyze_run, analyze_table, load_table
from harness.cli.app import main
from harness.rundir import read_meta
from harness.runner.execute import RunOptions, run
from harness.shadow import ShadowClient, keep_text
from harness.summary import Claim

SYSTEM = " ".join(
    f"Policy {i}: refunds within 30 days, escalate billing disputes, keep replies "
    "short and friendly."
    for i in range(1, 100)
)  # ~2,000 tokens: cacheable


def _scenario(tmp_path: Path, repeats: int) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(
        "version: 1\nname: claims\nmodel: gpt-4.1-mini\narms: [chat, responses]\n"
        f"repeats: {repeats}\ndefaults: {{temperature: 0, max_output_tokens: 24}}\n"
        f'system: "{SYSTEM}"\n'
        "prompts:\n  - id: refund\n    turns: [Can I get a refund?, And after 40 days?]\n",
        encoding="utf-8",
    )
    return path


def _claims(tmp_path: Path, profile: str, repeats: int = 60) -> dict[str, Claim]:
    result = run(
        [_scenario(tmp_path, repeats)],
        RunOptions(
            out=tmp_path / "runs",
            seed=4,
            progress=False,
            emulator_profile=profile,
            emulator_time_scale=0.05,
        ),
    )
    summary = analyze_run(result.run_dir)
    (scenario,) = summary.scenarios
    return scenario.claims


@pytest.mark.timing
def test_guide_claims_profile_is_recovered_and_supported(tmp_path: Path) -> None:
    claims = _claims(tmp_path, "guide-claims")
    cold = claims["first_request_slower"]
    cache = claims["cache_utilization_better"]
    # injected: Responses' cold TTFT ×2.5; Chat reuses 60 % of a cached prefix, rounded down to
    # the 1,024 + 128·k grid → 1,152 vs Responses' 1,920 of a ~2,000-token prefix on turn 2
    injected_cache = 1920 / 1152 - 1
    assert cold.value is not None and abs(cold.value - 2.5) <= 0.25  # within 10 %
    assert cold.verdict == "supported"
    assert cache.value is not None and abs(cache.value - injected_cache) <= 0.1 * injected_cache
    assert cache.verdict == "supported"
    assert "guide-claims" in (cold.injected_by_profile or "")


def test_values_outside_the_claimed_ranges_are_contradicted(tmp_path: Path) -> None:
    profile = tmp_path / "outside.yaml"
    profile.write_text(
        "extends: guide-claims\nresponses: {cold_ttft_factor: 4.0}\n"
        "chat: {cache_hit_share: 1.0, cache_ttl_s: 3600}\n",
        encoding="utf-8",
    )
    claims = _claims(tmp_path, str(profile), repeats=40)
    assert claims["first_request_slower"].verdict == "contradicted"
    assert claims["cache_utilization_better"].verdict == "contradicted"


def test_parity_never_supports_a_claim(tmp_path: Path) -> None:
    claims = _claims(tmp_path, "parity", repeats=30)
    assert {c.verdict for c in claims.values()} <= {"contradicted", "inconclusive"}


def test_shadow_run_cache_claims_are_not_assessable(
    tmp_path: Path, capsys: Any, emulators: Any
) -> None:
    """A shadow run on a target where Responses does cache ~67 % better: the data would seem to
    support the guide, but each mirror found the prefix its live call had just cached."""
    profile = tmp_path / "fast-guide.yaml"
    profile.write_text(
        "extends: guide-claims\nname: fast-guide\nboth: {ttft_ms: 0, "
        "cold_penalty_ms: 0, prefill_ms_per_1k_tokens: 0, per_token_ms: 0}\n",
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"

    def ask(client: Any, i: int) -> None:
        client.chat.completions.create(
            model="gpt-4.1-mini",
            temperature=0,
            max_tokens=24,
            messages=[
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Question {i}: can I get a refund?"},
            ],
        )

    with (
        emulators.running(str(profile)) as emu,
        ShadowClient(
            openai.OpenAI(base_url=emu.base_url, api_key="test", max_retries=0),
            sample_rate=1.0,
            run_dir=run_dir,
            redact=keep_text,
            mode="thread",
        ) as client,
    ):
        ask(client.wrapped, -1)  # production traffic: the shared prefix is warm already
        # 80 pairs: with fewer, a miss rate of a few per cent (Laplace's rule, after no
        # misses at all) still reaches past the claimed +80 %
        for i in range(80):
            ask(client, i)
        assert client.shadow.flush(20)
    assert main(["analyze", str(run_dir), "--quiet", "--resamples", "400"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    (scenario,) = summary["scenarios"]
    arms = scenario["arms"]
    assert arms["responses"]["cache_hit_ratio"]["value"] > arms["chat"]["cache_hit_ratio"]["value"]
    comparison = scenario["comparisons"]["responses_vs_chat"]
    assert comparison["cache_contaminated"] is True
    assert comparison["cache_hit_ratio_delta"] is comparison["cache_hit_improvement"] is None
    cache, cost = scenario["claims"]["cache_utilization_better"], scenario["claims"]["cost"]
    assert cache["verdict"] == cost["verdict"] == "inconclusive"
    assert cache["contaminated"] and cost["contaminated"] and cache["value"] is None
    assert "not assessable" in cache["note"] and "not assessable" in cost["note"]
    assert any("cache figures are contaminated" in w for w in summary["warnings"])
    # the same rows read as if they were clean would have "supported" the guide's claim
    clean = analyze_table(
        load_table(run_dir / "observations.jsonl"), None, resamples=400, contaminated_cache=()
    )
    assert clean.scenarios[0].claims["cache_utilization_better"].verdict == "supported"
    # … and a cost verdict: Responses priced from hits its live call paid for looks cheaper
    clean_cost = clean.scenarios[0].comparisons["responses_vs_chat"].cost_ratio
    assert clean_cost is not None and clean_cost.ci95 is not None and clean_cost.ci95[1] < 0.98
    assert comparison["cost_ratio"] is None
    # the mirror uses the raw client, the live call the application's SDK: no SDK-clock ratio
    assert comparison["sdk_ttft_p50_ratio"] is comparison["sdk_total_p50_ratio"] is None
    assert read_meta(run_dir).emulator_profile == "fast-guide"  # from x-emulator-profile

    reports = tmp_path / "reports"
    assert main(["report", str(run_dir), "--out", str(reports)]) == 0
    capsys.readouterr()
    markdown = next(reports.rglob("summary.md")).read_text(encoding="utf-8")
    html = next(reports.rglob("report.html")).read_text(encoding="utf-8")
    assert "cache figures are contaminated" in markdown
    assert "✅ supported" not in markdown
    assert "not assessable: the cache figures of a shadow run are contaminated" in html
    assert "Not assessable on shadow traffic" in html  # the verdict card, not "no usage"
    # no cost verdict anywhere: cards, headline sentence
    headline = next(line for line in markdown.splitlines() if line.startswith("**Compared"))
    assert "cannot be judged on cost here (shadow traffic)" in headline
    assert "% cheaper" not in markdown and "more expensive" not in markdown  # cards say "4 %"
    cost_card = next(line for line in markdown.splitlines() if line.startswith("| Cost |"))
    assert "n/a" in cost_card and "Not assessable on shadow traffic" in cost_card
    # run facts: the profile the emulator named, live traffic, no plan and no seed
    assert "profile `fast-guide`" in markdown and "unnamed" not in markdown + html
    facts = html[
        html.index('<section id="run">') : html.index("</section>", html.index('id="run"'))
    ]
    assert "live traffic" in facts and "100 % of calls mirrored" in facts
    assert "planned" not in facts and "Seed" not in facts and "warm-up" not in facts
    assert (
        "SDK overhead not compared: the arms used different clients (chat: sdk, responses: raw)"
        in html
    )
