"""harness.fmt: one spelling of every number, checked case by case and across the outputs.

Every function maps None, NaN and ±inf to an em dash (an interval's end may be ±∞: a ratio
against an arm that cached nothing is unbounded, issue 16), prints a value that rounds to zero
without a sign (issue 19: "-0 % (-0 %–0 %)", "-0.0 pts (-0.0 to -0.0)"), and switches units on the
rounded value. The last test renders one summary through the terminal table, Markdown and the
gate text and finds the same effect string in each (issue 15: it used to print three ways).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from rich.console import Console

from harness import fmt
from harness.analysis.analyze import SyntheticProfile, analyze_table, synthetic_observations
from harness.analysis.metrics import ObservationTable
from harness.cli.analyze import summary_tables
from harness.cli.gate import format_report
from harness.fmt import DASH
from harness.gates.config import GateConfig, parse_gate
from harness.gates.evaluate import evaluate
from harness.report.markdown import summary_markdown
from harness.summary import Claim, Effect, Estimate

NAN, INF = math.nan, math.inf
MISSING = [None, NAN, INF, -INF]


def _claim(unit: str, value: float | None, ci: tuple[float, float] | None) -> Claim:
    return Claim(
        claim="cost",
        quote="q",
        metric=None,
        unit=unit,  # type: ignore[arg-type]
        value=value,
        ci95=ci,
        claimed_range=None,
        claimed="< 1 (cheaper)",
        verdict="inconclusive",
        note="",
        injected_by_profile=None,
    )


def _effect(value: float | None, ci: tuple[float, float] | None, sig: bool = False) -> Effect:
    return Effect(value=value, ci95=ci, significant=sig, n_pairs=10)


CASES: list[tuple[Callable[..., str], tuple[Any, ...], str]] = [
    # ms: one decimal below 100, none from 100 as rounded, thousands separators
    *[(fmt.ms, (x,), DASH) for x in MISSING],
    (fmt.ms, (41.94,), "41.9 ms"),
    (fmt.ms, (99.94,), "99.9 ms"),
    (fmt.ms, (99.95,), "100 ms"),
    (fmt.ms, (1234.4,), "1,234 ms"),
    (fmt.ms, (1234567.0,), "1,234,567 ms"),
    (fmt.ms, (-0.04,), "0.0 ms"),
    (fmt.ms, (0.0,), "0.0 ms"),
    # num
    *[(fmt.num, (x,), DASH) for x in MISSING],
    (fmt.num, (1234.5,), "1,234.50"),
    (fmt.num, (0.915, 1), "0.9"),
    (fmt.num, (-0.001,), "0.00"),
    (fmt.num, (-1.5, 1), "-1.5"),
    # ratio
    *[(fmt.ratio, (x,), DASH) for x in MISSING],
    (fmt.ratio, (0.98,), "0.98×"),
    (fmt.ratio, (0.9995,), "1.00×"),
    (fmt.ratio, (0.9949,), "0.99×"),
    (fmt.ratio, (1234.5,), "1,234.50×"),
    (fmt.ratio, (-0.001,), "0.00×"),
    # pct: a fraction as a percentage
    *[(fmt.pct, (x,), DASH) for x in MISSING],
    (fmt.pct, (0.25,), "25 %"),
    (fmt.pct, (0.2549, 1), "25.5 %"),
    (fmt.pct, (0.05, 1, True), "+5.0 %"),
    (fmt.pct, (-0.05, 1, True), "-5.0 %"),
    (fmt.pct, (-0.001, 0, True), "0 %"),
    (fmt.pct, (-0.0004, 1), "0.0 %"),
    (fmt.pct, (0.0, 0, True), "0 %"),
    (fmt.pct, (12.34,), "1,234 %"),
    (fmt.pct, (0.99996, 2), "100.00 %"),
    # usd: enough digits for a fraction of a cent, never an exponent
    *[(fmt.usd, (x,), DASH) for x in MISSING],
    (fmt.usd, (0.0,), "$0"),
    (fmt.usd, (-0.0,), "$0"),
    (fmt.usd, (1234.56,), "$1,235"),
    (fmt.usd, (99.996,), "$100"),
    (fmt.usd, (12.5,), "$12.50"),
    (fmt.usd, (0.99996,), "$1.00"),
    (fmt.usd, (0.0123,), "$0.0123"),
    (fmt.usd, (0.000123,), "$0.00012"),
    (fmt.usd, (0.00004,), "$0.00004"),
    (fmt.usd, (-0.5,), "-$0.5000"),
    # points: a difference of fractions
    *[(fmt.points, (x,), DASH) for x in MISSING],
    (fmt.points, (0.365,), "+36.5 pts"),
    (fmt.points, (-0.05,), "-5.0 pts"),
    (fmt.points, (-0.0001,), "0.0 pts"),
    (fmt.points, (0.0,), "0.0 pts"),
    # threshold: as written in the gates file
    *[(fmt.threshold, (x,), DASH) for x in MISSING],
    (fmt.threshold, (1.5,), "1.5"),
    (fmt.threshold, (0.05,), "0.05"),
    (fmt.threshold, (10.0,), "10"),
    (fmt.threshold, (-0.0,), "0"),
    (fmt.threshold, (0.05 * 100,), "5"),
    # interval: unit once after an en dash; " to " when a printed bound is negative
    (fmt.interval, (None,), DASH),
    (fmt.interval, ((NAN, 1.0), "ratio"), DASH),
    (fmt.interval, ((0.5, INF), "ratio"), "0.50–∞"),  # an honest unbounded end (issue 16)
    (fmt.interval, ((0.5, NAN), "ratio"), DASH),
    (fmt.interval, ((0.7, 1.17), "ratio"), "0.70–1.17"),
    (fmt.interval, ((-0.133, -0.017), "points"), "-13.3 to -1.7"),
    (fmt.interval, ((-0.0003, -0.0001), "points"), "0.0–0.0"),
    (fmt.interval, ((40.04, 44.0), "ms"), "40.0–44.0 ms"),
    (fmt.interval, ((95.0, 99.95), "ms"), "95.0–100 ms"),
    (fmt.interval, ((-5.0, 3.0), "ms"), "-5.0 ms to 3.0 ms"),
    (fmt.interval, ((-0.2, 0.1), "pct"), "-20.0 % to 10.0 %"),
    (fmt.interval, ((0.25, 0.5), "share"), "25.0–50.0 %"),
    (fmt.interval, ((0.001, 0.002), "usd"), "$0.0010–$0.0020"),
    (fmt.interval, ((1000.0, 2000.0), "num"), "1,000.00–2,000.00"),
    (fmt.interval, ((0.91, 0.96), "num1"), "0.9–1.0"),
    # estimate: a value with its interval and the significance mark
    (fmt.estimate, (None, (0.7, 1.2)), DASH),
    (fmt.estimate, (NAN, (0.7, 1.2)), DASH),
    (fmt.estimate, (0.98, (0.70, 1.17), "ratio"), "0.98× (0.70–1.17)"),
    (partial(fmt.estimate, significant=True), (2.09, (1.86, 2.25)), "2.09× (1.86–2.25) *"),
    (fmt.estimate, (1.2, None, "ratio"), "1.20×"),
    (fmt.estimate, (1.2, (1.1, INF), "ratio"), "1.20× (1.10–∞)"),
    (fmt.estimate, (1.2, (NAN, 1.3), "ratio"), "1.20×"),
    (fmt.estimate, (41.9, (40.0, 44.0), "ms"), "41.9 ms (40.0–44.0 ms)"),
    (fmt.estimate, (0.033, (0.006, 0.167), "share"), "3.3 % (0.6–16.7 %)"),
    (fmt.estimate, (0.0123, (0.01, 0.015), "usd"), "$0.0123 ($0.0100–$0.0150)"),
    (fmt.estimate, (0.913, None, "num"), "0.91"),
    # effect: Effect or Estimate records
    (fmt.effect, (None,), DASH),
    (fmt.effect, (_effect(None, None),), DASH),
    (fmt.effect, (_effect(0.98, (0.70, 1.17), True),), "0.98× (0.70–1.17) *"),
    (fmt.effect, (_effect(0.98, (0.70, 1.17), False),), "0.98× (0.70–1.17)"),
    (
        fmt.effect,
        (_effect(0.365, (0.16, 0.56), True), "points"),
        "+36.5 pts (16.0–56.0) *",
    ),
    # issue 19's A/A case: the sign is gone; the mark is the statistics' (the interval excludes 0)
    (
        fmt.effect,
        (_effect(-0.00004, (-0.0003, -0.0001), True), "points"),
        "0.0 pts (0.0–0.0) *",
    ),
    (fmt.effect, (_effect(-0.0004, (-0.003, 0.002)), "pct"), "0.0 % (-0.3 % to 0.2 %)"),
    (fmt.effect, (Estimate(value=0.25, ci95=(0.2, 0.3)), "share"), "25.0 % (20.0–30.0 %)"),
    # claim: one spelling per claim unit (points are already ×100)
    (fmt.claim, (_claim("ratio", 2.1, (1.9, 2.3)),), "2.10× (1.90–2.30)"),
    (fmt.claim, (_claim("relative", 0.352, (0.201, 0.503)),), "+35.2 % (20.1–50.3 %)"),
    (fmt.claim, (_claim("relative", -0.0004, (-0.0004, 0.0003)),), "0.0 % (0.0–0.0 %)"),
    (fmt.claim, (_claim("points", 12.3, (5.0, 20.0)),), "+12.3 pts (5.0–20.0)"),
    (fmt.claim, (_claim("points", -0.04, (-0.2, 0.1)),), "0.0 pts (-0.2 to 0.1)"),
    (fmt.claim, (_claim("ratio", None, None),), DASH),
    # durations and times
    (fmt.duration_s, (None,), DASH),
    (fmt.duration_s, (NAN,), DASH),
    (fmt.duration_s, (12.34,), "12.3 s"),
    (fmt.duration_s, (59.96,), "1 min 0 s"),
    (fmt.duration_s, (125.0,), "2 min 5 s"),
    (fmt.duration_s, (3725.0,), "1 h 2 min"),
    (fmt.when, (None,), DASH),
    (fmt.when, (0.0,), "1970-01-01 00:00:00 UTC"),
    (fmt.arm_name, ("responses_chained",), "Responses (chained)"),
    (fmt.arm_name, ("chat#2",), "Chat Completions replicate 2"),
    # issue 19: "Chat Completions's", "emulator (emulator — not OpenAI)"
    (fmt.possessive, ("Chat Completions",), "Chat Completions'"),
    (fmt.possessive, ("Responses (chained)",), "Responses (chained)'s"),
    (fmt.possessive, ("chat",), "chat's"),
    (fmt.target_label, ("emulator", True), "emulator — not OpenAI"),
    (
        fmt.target_label,
        ("http://127.0.0.1:8787/v1", True),
        "http://127.0.0.1:8787/v1 (emulator — not OpenAI)",
    ),
    (fmt.target_label, ("openai", False), "openai"),
]


@pytest.mark.parametrize(
    ("func", "args", "expected"),
    CASES,
    ids=[f"{getattr(f, '__name__', 'partial')}-{i}" for i, (f, _, _) in enumerate(CASES)],
)
def test_spelling(func: Callable[..., str], args: tuple[Any, ...], expected: str) -> None:
    assert func(*args) == expected


def test_every_public_function_has_cases() -> None:
    tested = {getattr(f, "__name__", "") for f, _, _ in CASES}
    public = {n for n in fmt.__all__ if callable(getattr(fmt, n)) and n != "DASH"}
    assert public <= tested, public - tested


def test_one_effect_spelling_in_terminal_markdown_and_gate_text() -> None:
    obs = synthetic_observations(
        SyntheticProfile(responses_ttft_factor=2.0), repeats=10, seed=3, run_id="r"
    )
    summary = analyze_table(ObservationTable.from_observations(obs), resamples=200)
    comparison = summary.scenarios[0].comparisons["responses_vs_chat"]
    spelled = fmt.effect(comparison.ttft_p50_ratio)
    assert spelled.endswith(") *") and "×" in spelled  # a significant ratio with its interval

    console = Console(record=True, width=400, color_system=None)
    for table in summary_tables(summary):
        console.print(table)
    terminal = console.export_text()
    markdown = summary_markdown(summary)
    gate = format_report(
        evaluate(
            summary,
            GateConfig(
                for_all=[parse_gate("responses_vs_chat.ttft_p50_ratio_max", 1.5, "g.yaml", 1)]
            ),
        )
    )

    assert spelled in terminal
    assert f"| {spelled} |" in markdown
    assert f"  {spelled}  ≤ 1.5" in gate
    assert "&" not in terminal + gate  # plain text: no HTML entities outside HTML
