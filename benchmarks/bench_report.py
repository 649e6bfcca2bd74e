"""Report cost against analysis cost, in the same run (issue 8).

Two synthetic runs of 100,000 observations are written once: *few prompts* (4 arms, 5 prompts
× 2 turns, 2,500 repeats) and *many prompts* (4 arms, 500 prompts × 2 turns, 25 repeats — the
size-bounding case: the per-prompt detail and the prompt table are capped). Goals: rendering
``report.html`` + ``summary.md`` + ``junit.xml`` from the run directory (parsing the
observations again, ranking every pair, drawing the charts) costs ≤ 5× ``analyze_run`` of the
same run, and ``report.html`` stays ≤ 5 MB. Analysis and render rounds are interleaved so
machine noise hits both. Run: ``python -m pytest benchmarks/bench_report.py --benchmark-only -s``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_run,
    synthetic_observations,
    write_summary,
    write_synthetic_run,
)
from harness.report import render_report

ROUNDS = 3
MAX_RATIO = 5.0
MAX_HTML_BYTES = 5 * 1024 * 1024
SHAPES = {"few-prompts": (5, 2_500), "many-prompts": (500, 25)}  # prompts, repeats


@pytest.fixture(scope="module", params=sorted(SHAPES))
def big_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    prompts, repeats = SHAPES[request.param]
    obs = synthetic_observations(
        SyntheticProfile(
            responses_cold_ratio=2.5, responses_cache_advantage=0.6, divergence=0.2, error_rate=0.01
        ),
        arms=("chat", "responses", "responses_chained", "chat#2"),
        prompts=prompts,
        turns=2,
        repeats=repeats,
        run_id=f"bench-{request.param}",
    )
    assert len(obs) == 100_000
    return write_synthetic_run(
        tmp_path_factory.mktemp("bench") / request.param, obs, emulator_profile="guide-claims"
    )


def _seconds(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def test_report_100k_within_5x_analyze(benchmark: Any, big_run: Path, tmp_path: Path) -> None:
    write_summary(big_run, analyze_run(big_run))  # the report reads the saved summary
    analyze_s: list[float] = []

    def setup() -> tuple[tuple[Path, Path], dict[str, Any]]:
        analyze_s.append(_seconds(analyze_run, big_run))  # interleaved with the render rounds
        return (big_run, tmp_path / "report"), {}

    paths = benchmark.pedantic(render_report, setup=setup, rounds=ROUNDS, iterations=1)
    render_best = benchmark.stats.stats.min
    ratio = render_best / min(analyze_s)
    size = paths.html.stat().st_size
    benchmark.extra_info.update(
        analyze_s=min(analyze_s), render_s=render_best, ratio=ratio, html_bytes=size
    )
    print(
        f"\n{big_run.name}: 100,000 observations: analyze {min(analyze_s):.2f} s, render "
        f"{render_best:.2f} s, ratio {ratio:.2f}× (goal ≤ {MAX_RATIO}×); report.html "
        f"{size / 1e6:.2f} MB (goal ≤ {MAX_HTML_BYTES / 1e6:.1f} MB), summary.md "
        f"{paths.markdown.stat().st_size / 1e3:.1f} kB, junit.xml "
        f"{paths.junit.stat().st_size / 1e3:.1f} kB"
    )
    assert ratio <= MAX_RATIO
    assert size <= MAX_HTML_BYTES
