"""The migration guide's claims, end to end: emulator profile → harness run → summary verdicts.

The emulator injects known effects; the harness must recover them from the wire (it never reads
the emulator's truth log) and judge the claims by their 95 % intervals.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analyze import analyze_run
from harness.runner import RunOptions, run
from harness.summary import Claim

SYSTEM = " ".join(f"Policy {i}: refunds within 30 days, escalate billing disputes, keep replies "
                  "short and friendly." for i in range(1, 100))  # ~2,000 tokens: cacheable


def _scenario(tmp_path: Path, repeats: int) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(
        "version: 1\nname: claims\nmodel: gpt-4.1-mini\narms: [chat, responses]\n"
        f"repeats: {repeats}\ndefaults: {{temperature: 0, max_output_tokens: 24}}\n"
        f"system: \"{SYSTEM}\"\n"
        "prompts:\n  - id: refund\n    turns: [Can I get a refund?, And after 40 days?]\n",
        encoding="utf-8")
    return path


def _claims(tmp_path: Path, profile: str, repeats: int = 60) -> dict[str, Claim]:
    result = run([_scenario(tmp_path, repeats)],
                 RunOptions(out=tmp_path / "runs", seed=4, progress=False,
                            emulator_profile=profile, emulator_time_scale=0.05))
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
    profile.write_text("extends: guide-claims\nresponses: {cold_ttft_factor: 4.0}\n"
                       "chat: {cache_hit_share: 1.0, cache_ttl_s: 3600}\n", encoding="utf-8")
    claims = _claims(tmp_path, str(profile), repeats=40)
    assert claims["first_request_slower"].verdict == "contradicted"
    assert claims["cache_utilization_better"].verdict == "contradicted"


def test_parity_never_supports_a_claim(tmp_path: Path) -> None:
    claims = _claims(tmp_path, "parity", repeats=30)
    assert {c.verdict for c in claims.values()} <= {"contradicted", "inconclusive"}
