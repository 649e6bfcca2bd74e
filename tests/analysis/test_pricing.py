"""Cost: genai-prices' published per-token prices, checked by hand; overrides; unknown models."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from harness.analysis.pricing import PriceBook, exact_cost_usd, load_price_overrides, project
from harness.errors import HarnessError

WHEN = datetime(2026, 11, 1, tzinfo=UTC)
MTOK = 1_000_000


def _arr(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# Published OpenAI prices (USD per 1M tokens) as genai-prices records them:
# input, cached input, output. OpenAI has no separate cache-write price: writes bill as input.
PUBLISHED = {
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_resolved_rates_match_published_prices(model: str) -> None:
    p = PriceBook(when=WHEN).prices(model)
    assert p is not None
    inp, cached, out = PUBLISHED[model]
    assert (p.input_mtok, p.cached_input_mtok, p.cache_write_mtok, p.output_mtok) == pytest.approx(
        (inp, cached, inp, out)
    )
    assert p.source.startswith("genai-prices ")
    assert p.price_date == "2026-11-01"


@pytest.mark.parametrize(
    ("model", "usage", "expected_usd"),
    [
        # input 10,000 of which 4,096 cached and 1,024 written; 500 output.
        # uncached 10,000 − 4,096 − 1,024 = 4,880
        (
            "gpt-4.1-mini",
            (10_000, 4_096, 1_024, 500),
            (4_880 * 0.40 + 4_096 * 0.10 + 1_024 * 0.40 + 500 * 1.60) / MTOK,
        ),  # 0.0035712
        (
            "gpt-4o",
            (10_000, 4_096, 1_024, 500),
            (4_880 * 2.50 + 4_096 * 1.25 + 1_024 * 2.50 + 500 * 10.00) / MTOK,
        ),  # 0.02488
        (
            "gpt-5-mini",
            (10_000, 4_096, 1_024, 500),
            (4_880 * 0.25 + 4_096 * 0.025 + 1_024 * 0.25 + 500 * 2.00) / MTOK,
        ),  # 0.0026784
        # the DESIGN's example: an identical 2,000-token prompt, 1,920 cached
        (
            "gpt-4.1-mini",
            (2_000, 1_920, 0, 100),
            (80 * 0.40 + 1_920 * 0.10 + 100 * 1.60) / MTOK,
        ),  # 0.000384
        ("gpt-4o", (800, 0, 0, 0), 800 * 2.50 / MTOK),
    ],
)
def test_cost_by_hand(model: str, usage: tuple[int, int, int, int], expected_usd: float) -> None:
    book = PriceBook(when=WHEN)
    got = book.cost_usd(model, None, *(_arr(u) for u in usage))
    assert got is not None
    assert got[0] == pytest.approx(expected_usd, rel=1e-12)
    # the vectorized path agrees with genai-prices' own calc_price
    assert exact_cost_usd(model, *usage, when=WHEN) == pytest.approx(expected_usd, rel=1e-12)


def test_cached_tokens_are_never_counted_twice() -> None:
    book = PriceBook(when=WHEN)
    uncached = book.cost_usd("gpt-4o", None, _arr(2_000), _arr(0), _arr(0), _arr(0))
    cached = book.cost_usd("gpt-4o", None, _arr(2_000), _arr(1_920), _arr(0), _arr(0))
    assert uncached is not None and cached is not None
    # caching 1,920 tokens saves exactly their discount, it never adds their price
    assert uncached[0] - cached[0] == pytest.approx(1_920 * (2.50 - 1.25) / MTOK)


def test_service_tier_selects_its_price_variant() -> None:
    book = PriceBook(when=WHEN)
    default, priority = (
        book.prices("gpt-4.1-mini", "default"),
        book.prices("gpt-4.1-mini", "priority"),
    )
    assert default is not None and priority is not None
    assert priority.input_mtok > default.input_mtok


def test_unknown_model_is_a_warning_and_null_cost() -> None:
    book = PriceBook(when=WHEN)
    assert book.cost_usd("acme-llm-9", None, _arr(1), _arr(0), _arr(0), _arr(1)) is None
    assert len(book.warnings) == 1 and "acme-llm-9" in book.warnings[0]
    assert "--prices" in book.warnings[0]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_override_file_prices_models_genai_prices_lacks(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"prices{suffix}"
    body = (
        '{"models": {"acme-llm-9": {"input_mtok": 3, "cached_input_mtok": 0.3, '
        '"cache_write_mtok": 3.75, "output_mtok": 15}, "gpt-4o": {"input_mtok": 1, '
        '"output_mtok": 2}}}'
    )
    path.write_text(body if suffix == ".json" else body.replace('{"models"', "{models"))
    book = PriceBook(load_price_overrides(path), override_file=path, when=WHEN)
    got = book.cost_usd("acme-llm-9", None, _arr(10_000), _arr(4_000), _arr(2_000), _arr(1_000))
    assert got is not None
    assert got[0] == pytest.approx((4_000 * 3 + 4_000 * 0.3 + 2_000 * 3.75 + 1_000 * 15) / MTOK)
    assert book.warnings == []  # acme-llm-9 names its cached price
    # an override wins over genai-prices; a missing cached price means no discount — and says
    # so (issue 16: it did so silently)
    gpt = book.prices("gpt-4o")
    assert gpt is not None and (gpt.input_mtok, gpt.cached_input_mtok) == (1, 1)
    assert str(path) in gpt.source and str(path) in book.source
    (warning,) = book.warnings
    assert warning.startswith(f"price override for 'gpt-4o' in {path} has no cached_input_mtok")
    assert "no cache discount" in warning and "add cached_input_mtok" in warning


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("models: {m: {input_mtok: 1}}", "models.m.output_mtok"),
        ("models: {m: {input_mtok: -1, output_mtok: 1}}", "models.m.input_mtok"),
        ("prices: {}", "models"),
        ("models: [", "not valid YAML"),
    ],
)
def test_bad_override_file_names_the_problem(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(body)
    with pytest.raises(HarnessError, match=message):
        load_price_overrides(path)


def test_projection_per_thousand_and_million() -> None:
    p = project(0.0035712)
    assert p is not None
    assert (p.per_1k_requests_usd, p.per_1m_requests_usd) == pytest.approx((3.5712, 3571.2))


@pytest.mark.parametrize("model", ["gpt-5.4", "gpt-5.5"])
def test_tiered_prices_match_genai_prices_request_by_request(model: str) -> None:
    """The vectorized cliff (above a prompt size the whole request pays the tier's rate)
    agrees with genai-prices' own calculation on both sides of every tier."""
    book = PriceBook(when=WHEN)
    prices = book.prices(model)
    assert prices is not None and prices.tiered
    starts = sorted({start for _, start, _ in prices.tiers})
    inputs = [1_000, *(s + d for s in starts for d in (-1, 0, 1, 50_000))]
    cases = [(i, i // 2, 0, 700) for i in inputs]
    got = book.cost_usd(model, None, *(_arr(*col) for col in zip(*cases, strict=True)))
    want = [exact_cost_usd(model, i, c, w, o, when=WHEN) for i, c, w, o in cases]
    assert got is not None
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    at, above = (
        book.cost_usd(model, None, _arr(n), _arr(0), _arr(0), _arr(0))
        for n in (starts[0], starts[0] + 1)
    )
    assert at is not None and above is not None
    assert above[0] / (starts[0] + 1) > at[0] / starts[0]  # crossing the tier changed the rate


def test_a_snapshot_round_trips_and_is_used_instead_of_genai_prices() -> None:
    """What a run recorded is what analysis prices with — even if genai-prices changed since."""
    snap = PriceBook(when=WHEN).snapshot([("gpt-4o", None), ("acme-llm-9", "default")])
    assert [m["model"] for m in snap["models"]] == ["gpt-4o"]
    assert snap["unknown"] == [["acme-llm-9", "default"]]
    snap["models"][0]["output_mtok"] = 99.0  # as if the published price had moved since
    book = PriceBook(when=WHEN, recorded=snap)
    cost = book.cost_usd("gpt-4o", None, _arr(0), _arr(0), _arr(0), _arr(MTOK))
    assert cost is not None and cost[0] == pytest.approx(99.0)
    assert "recorded when the run was made" in book.source
    assert book.cost_usd("acme-llm-9", "default", _arr(1), _arr(0), _arr(0), _arr(1)) is None
    assert len(book.warnings) == 1 and "acme-llm-9" in book.warnings[0]


def test_an_override_file_still_beats_recorded_prices(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "models:\n  gpt-4o: {input_mtok: 1, cached_input_mtok: 1, output_mtok: 7}\n",
        encoding="utf-8",
    )
    snap = PriceBook(when=WHEN).snapshot([("gpt-4o", None)])
    book = PriceBook(load_price_overrides(path), override_file=path, recorded=snap)
    cost = book.cost_usd("gpt-4o", None, _arr(0), _arr(0), _arr(0), _arr(MTOK))
    assert cost is not None and cost[0] == pytest.approx(7.0)


def test_a_recorded_override_keeps_its_no_discount_warning(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  gpt-4o: {input_mtok: 1, output_mtok: 7}\n", encoding="utf-8")
    at_run = PriceBook(load_price_overrides(path), override_file=path, when=WHEN)
    snap = at_run.snapshot([("gpt-4o", None), ("gpt-4o", "default")])
    later = PriceBook(when=WHEN, recorded=snap)
    assert len(later.warnings) == 1 and "no cached_input_mtok" in later.warnings[0]
