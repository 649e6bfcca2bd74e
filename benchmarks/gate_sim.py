"""Gate rates with known truth (issue 16): how often the gates fail A/A and catch +25 %.

Synthetic runs (``harness.analysis.analyze.synthetic_observations``: lognormal TTFT, σ = 0.3,
no drift, cold = warm so the power formula's lognormal assumption holds) go through the real
analysis and the real gate code, in process (``evaluate`` on a Summary; ``compare_runs`` on
observation tables), never a subprocess:

- ``within``: the threshold gate ``responses_vs_chat.ttft_p50_ratio_max: 1.1`` at the repeats
  ``harness plan --power 25% --target-power 90%`` recommends for the quickstart's design
  (2 prompts × 2 turns); A/A (ratio 1.0) and a true +25 %.
- ``between``: the default baseline regression checks with a run-level spread (every request of
  a run scaled by one lognormal run effect) against baselines of one and three runs, at 5 and 30
  repeats (false alarms must not grow with the sample), and +25 % on responses.

``python benchmarks/gate_sim.py [--sims N]`` prints one line per rate with its Monte Carlo
standard error. ``benchmarks/validity.py`` (the full study) reuses the same public functions.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_table,
    compare_runs,
    synthetic_observations,
)
from harness.analysis.metrics import ObservationTable
from harness.analysis.stats import LATENCY_MARGIN, repeats_for_power
from harness.gates.baseline import Baseline, Samples
from harness.gates.config import GateConfig, parse_gate
from harness.gates.evaluate import evaluate

SIGMA = 0.3
PROMPTS, TURNS = 2, 2
ARMS = ("chat", "responses")


def _table(
    factor: float, seed: int, repeats: int, run_id: str, run_effect: float = 1.0
) -> ObservationTable:
    profile = SyntheticProfile(
        ttft_ms=300.0 * run_effect,
        responses_ttft_factor=factor,
        responses_cold_ratio=factor,
        cold_factor=1.0,
        drift=0.0,
        sigma=SIGMA,
    )
    obs = synthetic_observations(
        profile, arms=ARMS, prompts=PROMPTS, turns=TURNS, repeats=repeats, seed=seed, run_id=run_id
    )
    return ObservationTable.from_observations(obs)


def within_run_fail(factor: float, seed: int, repeats: int) -> bool:
    """One run; does ``responses_vs_chat.ttft_p50_ratio_max: 1.1`` fail?"""
    summary = analyze_table(_table(factor, seed, repeats, f"w{seed}"), resamples=1000, seed=seed)
    config = GateConfig(for_all=[parse_gate("responses_vs_chat.ttft_p50_ratio_max", 1.1, "sim")])
    return evaluate(summary, config).exit_code == 1


def p95_fail(factor: float, seed: int, repeats: int) -> bool:
    """One run; does ``responses_vs_chat.ttft_p95_ratio_max: 1.2`` fail (decided on its
    conversation-bootstrap interval, the run's rows given to ``evaluate``)?"""
    table = _table(factor, seed, repeats, f"p{seed}")
    summary = analyze_table(table, resamples=200, seed=seed)
    config = GateConfig(for_all=[parse_gate("responses_vs_chat.ttft_p95_ratio_max", 1.2, "sim")])
    return evaluate(summary, config, table=table).exit_code == 1


def between_runs_fail(
    factor: float, seed: int, repeats: int, baseline_runs: int, run_sd: float
) -> tuple[bool, bool]:
    """A candidate against a baseline of ``baseline_runs`` runs, each run scaled by its own
    run effect exp(N(0, run_sd)); returns (any default check failed, its TTFT check failed)."""
    rng = np.random.default_rng(seed)
    effects = np.exp(rng.normal(0.0, run_sd, baseline_runs + 1))
    cand = _table(factor, seed * 7 + 1, repeats, "cand", float(effects[0]))
    bases = [
        _table(1.0, seed * 7 + 2 + j, repeats, f"base{j}", float(effects[j + 1]))
        for j in range(baseline_runs)
    ]
    base_summary = analyze_table(bases[0], resamples=100)
    baseline = Baseline(
        name="sim",
        saved_at=0.0,
        harness_version="sim",
        source_run_dir=None,
        summary=base_summary,
        samples=Samples.from_table(bases[0]),
        more_runs=[Samples.from_table(b) for b in bases[1:]],
    )
    comparison = compare_runs(cand, bases, resamples=1000, seed=seed)
    report = evaluate(
        analyze_table(cand, resamples=100),
        GateConfig(),
        baseline=baseline,
        comparison=comparison,
    )
    ttft = any(r.failed and r.name.endswith("(ttft_p50)") for r in report.results)
    return report.exit_code == 1, ttft


def _rate(hits: list[bool]) -> str:
    p = sum(hits) / len(hits)
    se = math.sqrt(p * (1 - p) / len(hits))
    return f"{p:6.1%} ± {se:.1%} (n = {len(hits)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--only", choices=("within", "between", "p95"), default=None)
    parser.add_argument("--target-power", type=float, default=0.90)
    args = parser.parse_args()
    n = args.sims
    started = time.perf_counter()
    if args.only in (None, "within"):
        goal = args.target_power
        reps = repeats_for_power(
            0.25, SIGMA, samples_per_repeat=PROMPTS * TURNS, power=goal, margin=LATENCY_MARGIN
        )
        assert reps is not None
        print(f"within a run, ttft_p50_ratio_max 1.1, {reps} repeats (plan, {goal:.0%} target):")
        print("  A/A gate failure      ", _rate([within_run_fail(1.0, s, reps) for s in range(n)]))
        print(
            "  +25 % detection       ",
            _rate([within_run_fail(1.25, 10_000 + s, reps) for s in range(n)]),
        )
    if args.only in (None, "p95"):
        print(
            "p95 gate ttft_p95_ratio_max 1.2, A/A, 5 repeats (20 samples per arm):",
            _rate([p95_fail(1.0, 40_000 + s, 5) for s in range(n)]),
        )
    if args.only in (None, "between"):
        for repeats in (5, 30):
            for k in (1, 3):
                got = [between_runs_fail(1.0, 20_000 + s, repeats, k, 0.08) for s in range(n)]
                print(
                    f"between runs, A/A, 8 % run spread, {k}-run baseline, {repeats} repeats:"
                    f" any check {_rate([g[0] for g in got])}; TTFT {_rate([g[1] for g in got])}"
                )
        for k in (1, 3):
            got = [between_runs_fail(1.25, 30_000 + s, 30, k, 0.0) for s in range(n)]
            print(
                f"between runs, +25 % responses TTFT, no run spread, {k}-run baseline, 30 repeats:"
                f" TTFT check fails {_rate([g[1] for g in got])}"
            )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
