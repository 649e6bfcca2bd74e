"""Cost, cache and tokens are compared over the requests both arms reported usage for, without
the harness's cache nonce; too few conversations give no interval and no verdict."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from harness.analysis.analyze import SyntheticProfile, analyze_table, synthetic_observations
from harness.analysis.metrics import ObservationTable, billed_tokens, with_nonce_tokens
from harness.records import Observation

RESAMPLES = 300


def _fail(o: Observation) -> Observation:
    return o.model_copy(
        update={
            "ok": False,
            "status": 500,
            "error_type": "server_error",
            "finish": "error",
            "usage": None,
            "ttft_ms": None,
            "total_ms": None,
            "output_text": None,
        }
    )


def test_failures_on_cheap_cached_turns_do_not_move_cost_or_cache() -> None:
    """Identical token behaviour; Responses loses 3 warm (cheap, cached) turns to failures.
    (40 repeats: at 10 a cost interval keeps room for cache misses the run never showed.)"""
    obs = synthetic_observations(
        SyntheticProfile(sigma=0.05), arms=("chat", "responses"), prompts=2, turns=3, repeats=40
    )
    warm = [i for i, o in enumerate(obs) if o.arm == "responses" and o.turn == 3][:3]
    obs = [_fail(o) if i in warm else o for i, o in enumerate(obs)]
    s = analyze_table(ObservationTable.from_observations(obs), resamples=RESAMPLES)
    sc = s.scenarios[0]
    c = sc.comparisons["responses_vs_chat"]
    # unmatched, the arm that lost cheap turns looks dearer and worse at caching
    chat, resp = sc.arms["chat"], sc.arms["responses"]
    assert chat.cost_usd is not None and resp.cost_usd is not None
    assert resp.cost_usd.per_request_usd.value > chat.cost_usd.per_request_usd.value  # type: ignore[operator]
    assert c.cost_ratio is not None and c.cost_ratio.value == pytest.approx(1.0, abs=1e-12)
    assert c.cost_ratio.decision == "equivalent"
    assert c.cache_hit_ratio_delta is not None
    assert c.cache_hit_ratio_delta.value == pytest.approx(0.0, abs=1e-12)
    assert c.cache_hit_ratio_delta.decision == "equivalent"
    assert c.output_tokens_ratio is not None and c.output_tokens_ratio.decision == "equivalent"
    assert sc.claims["cost"].verdict != "supported"
    # the errors themselves are not hidden: 3 of 60 against 0 is not "no difference"
    assert c.error_rate_delta is not None and c.error_rate_delta.decision != "equivalent"


def test_cache_nonce_tokens_are_left_out_of_cost_and_token_comparisons() -> None:
    obs = synthetic_observations(
        SyntheticProfile(sigma=0.05), arms=("chat", "responses"), prompts=2, turns=2, repeats=10
    )
    t = ObservationTable.from_observations(obs)
    # nonces of varying length, on Responses only: the raw bill differs, the prompt does not
    rng = np.random.default_rng(0)
    nonce = np.where(np.array(t.arm) == "responses", rng.integers(4, 9, len(t)), 0)
    nonce = np.where(t.has_usage, nonce, 0)
    cached = np.where(t.cached_tokens > 0, t.cached_tokens + nonce, 0)
    plain = analyze_table(t, resamples=RESAMPLES).scenarios[0].comparisons["responses_vs_chat"]
    t = replace(t, nonce_tokens=nonce, input_tokens=t.input_tokens + nonce, cached_tokens=cached)
    c = analyze_table(t, resamples=RESAMPLES).scenarios[0].comparisons["responses_vs_chat"]
    assert c.cost_ratio is not None and c.cost_ratio.value == pytest.approx(1.0, abs=1e-12)
    # the nonces add nothing: the interval is the nonce-free run's (its width is the room left
    # for cache misses, stats.cache_event_var), centred on 1 on the log scale
    assert plain.cost_ratio is not None and plain.cost_ratio.ci95 is not None
    assert c.cost_ratio.ci95 == pytest.approx(plain.cost_ratio.ci95, abs=1e-12)
    lo, hi = c.cost_ratio.ci95
    assert lo * hi == pytest.approx(1.0, abs=1e-12)
    assert c.cost_ratio.significant is False and c.cost_ratio.decision == plain.cost_ratio.decision
    assert c.cache_hit_ratio_delta is not None
    assert c.cache_hit_ratio_delta.value == pytest.approx(0.0, abs=1e-12)


def test_nonce_tokens_from_meta_and_billed_tokens() -> None:
    obs = synthetic_observations(SyntheticProfile(), arms=("chat",), prompts=1, repeats=2)
    t = ObservationTable.from_observations(obs)
    nonces = {conv: "1a2b3c4d" for conv in set(t.conversation) if conv}
    t = with_nonce_tokens(t, nonces)
    assert (t.nonce_tokens[t.has_usage] > 0).all()
    rows = np.arange(len(t))
    inp, cached, _ = billed_tokens(t, rows)
    assert (inp == t.input_tokens - t.nonce_tokens).all()
    assert (cached[t.cached_tokens == 0] == 0).all()


def test_too_few_conversations_give_no_interval_and_no_verdict() -> None:
    obs = synthetic_observations(
        SyntheticProfile(responses_ttft_factor=3.0),
        arms=("chat", "responses"),
        prompts=2,
        repeats=4,
    )
    sc = analyze_table(ObservationTable.from_observations(obs), resamples=RESAMPLES).scenarios[0]
    c = sc.comparisons["responses_vs_chat"]
    assert c.ttft_p50_ratio is not None and c.ttft_p50_ratio.n_pairs == 8
    assert c.ttft_p50_ratio.ci95 is None and c.ttft_p50_ratio.decision == "too_few_samples"
    assert c.min_repeats == 5
    assert sc.arms["chat"].ttft_ms is not None and sc.arms["chat"].ttft_ms.ci95 is None
    for claim in sc.claims.values():
        assert claim.verdict == "inconclusive"
    assert "too few samples (n = 8): run ≥ 5 repeats" in sc.claims["first_request_slower"].note


def test_the_quickstart_design_gets_verdicts() -> None:
    """2 prompts × 5 repeats = 10 conversations: exactly the minimum."""
    obs = synthetic_observations(
        SyntheticProfile(responses_ttft_factor=3.0, sigma=0.1),
        arms=("chat", "responses"),
        prompts=2,
        repeats=5,
    )
    c = (
        analyze_table(ObservationTable.from_observations(obs), resamples=RESAMPLES)
        .scenarios[0]
        .comparisons["responses_vs_chat"]
    )
    assert c.ttft_p50_ratio is not None and c.ttft_p50_ratio.n_pairs == 10
    assert c.ttft_p50_ratio.decision == "worse"


def _first_request_verdict(seed: int, cold_ratio: float, repeats: int) -> str:
    obs = synthetic_observations(
        SyntheticProfile(responses_cold_ratio=cold_ratio, sigma=0.3, drift=0.0),
        arms=("chat", "responses"),
        prompts=2,
        turns=2,
        repeats=repeats,
        seed=seed,
    )
    s = analyze_table(ObservationTable.from_observations(obs), resamples=500)
    return s.scenarios[0].claims["first_request_slower"].verdict


SIMS = 80


def test_first_request_claim_with_known_truth() -> None:
    """Truth 2.5× (inside the claimed 2–3×) at the quickstart design is not contradicted (it
    was in 37 of 150 runs with 2 prompts × 1 repeat); parity never supports it; with
    2 prompts × 1 repeat there is no verdict at all."""
    inside = [_first_request_verdict(s, 2.5, 5) for s in range(SIMS)]
    assert inside.count("contradicted") <= 0.05 * SIMS, inside
    parity = [_first_request_verdict(1000 + s, 1.0, 5) for s in range(SIMS // 2)]
    assert "supported" not in parity and parity.count("contradicted") >= 0.9 * len(parity)
    assert {_first_request_verdict(2000 + s, 2.5, 1) for s in range(10)} == {"inconclusive"}
