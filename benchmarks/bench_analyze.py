"""Analysis cost against just parsing the JSONL, in the same run (issue 7).

A synthetic run of 100,000 observations (4 arms, 5 prompts × 2 turns, 2,500 repeats, 60-word
replies, one scenario) is written once. Goal: ``analyze_run`` (read + columns + bootstrap with
the default 2,000 resamples + similarity of every pair + claims) costs ≤ 3× the time to just
parse the file with ``json.loads`` line by line. Parse and analysis rounds are interleaved so
machine noise hits both. Run:
``python -m pytest benchmarks/bench_analyze.py --benchmark-only -s``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_run,
    synthetic_observations,
    write_synthetic_run,
)

N_REPEATS = 2_500  # × 4 arms × 5 prompts × 2 turns = 100,000 observations
ROUNDS = 3
MAX_RATIO = 3.0


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    obs = synthetic_observations(
        SyntheticProfile(responses_cold_ratio=2.5, responses_cache_advantage=0.6, divergence=0.2),
        arms=("chat", "responses", "responses_chained", "chat#2"),
        prompts=5,
        turns=2,
        repeats=N_REPEATS,
    )
    assert len(obs) == 100_000
    return write_synthetic_run(
        tmp_path_factory.mktemp("bench") / "run", obs, emulator_profile="guide-claims"
    )


def parse_only(path: Path) -> list[Any]:
    """The reference: what "just parsing the file" costs."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _seconds(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def test_parse_jsonl_100k(benchmark: Any, big_run: Path) -> None:
    rows = benchmark.pedantic(
        parse_only, args=(big_run / "observations.jsonl",), rounds=ROUNDS, iterations=1
    )
    assert len(rows) == 100_000


def test_analyze_100k_within_3x_parse(benchmark: Any, big_run: Path) -> None:
    path = big_run / "observations.jsonl"
    parse_s: list[float] = []

    def setup() -> tuple[tuple[Path], dict[str, Any]]:
        parse_s.append(_seconds(parse_only, path))  # interleaved with the analysis rounds
        return (big_run,), {}

    summary = benchmark.pedantic(analyze_run, setup=setup, rounds=ROUNDS, iterations=1)
    analyze_best = benchmark.stats.stats.min
    ratio = analyze_best / min(parse_s)
    benchmark.extra_info.update(parse_s=min(parse_s), analyze_s=analyze_best, ratio=ratio)
    print(
        f"\n100,000 observations: parse {min(parse_s):.2f} s, analyze {analyze_best:.2f} s, "
        f"ratio {ratio:.2f}× (goal ≤ {MAX_RATIO}×)"
    )
    assert summary.scenarios[0].claims["first_request_slower"].verdict == "supported"
    assert ratio <= MAX_RATIO
