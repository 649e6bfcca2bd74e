"""stats.samples_to_fit: the plan for a claim's interval to land inside its claimed range,
proven by simulation with known truth: a normal estimator on the log scale whose interval is
expanded at small samples as the harness's are (:func:`interval_quantile`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.stats import interval_quantile, samples_to_fit


def _inside_rate(
    truth: float, sigma: float, n: int, claimed: tuple[float, float], strata: int = 1
) -> float:
    """Share of simulated runs of n samples whose 95 % interval lies inside ``claimed``."""
    rng = np.random.default_rng(7)
    se = sigma / math.sqrt(n)
    est = math.log(truth) + rng.normal(0.0, se, 40_000)
    q = interval_quantile(n, strata)
    lo, hi = np.exp(est - q * se), np.exp(est + q * se)
    return float(np.mean((lo >= claimed[0]) & (hi <= claimed[1])))


@pytest.mark.parametrize("power", [0.8, 0.9])
def test_two_ended_range_reaches_the_power_at_the_log_middle(power: float) -> None:
    claimed, sigma, pilot_n = (2.0, 3.0), 0.45, 10
    truth = math.sqrt(6.0)  # the range's log-middle
    half = interval_quantile(pilot_n) * sigma / math.sqrt(pilot_n)
    pilot = (truth * math.exp(-half), truth * math.exp(half))
    n = samples_to_fit(pilot, pilot_n, claimed, power=power)
    assert n is not None and n > pilot_n
    rate = _inside_rate(truth, sigma, n, claimed)
    assert power - 0.01 <= rate <= power + 0.03  # ceil() may only add a little
    # a third fewer samples clearly miss it: the plan is not padded
    assert _inside_rate(truth, sigma, int(n * 0.66), claimed) < power - 0.05


def test_strata_widen_the_pilot_and_the_plan_as_they_widen_the_interval() -> None:
    """A run of 4 prompts stratifies its bootstrap: its intervals at 10 conversations are wider
    than one prompt's, so the same pilot interval means a smaller spread, and the plan's own
    interval is wider at its size; the plan must undo the first and pay for the second."""
    claimed, sigma, pilot_n, strata, power = (2.0, 3.0), 0.3, 10, 4, 0.8
    truth = math.sqrt(6.0)
    half = interval_quantile(pilot_n, strata) * sigma / math.sqrt(pilot_n)
    pilot = (truth * math.exp(-half), truth * math.exp(half))
    n = samples_to_fit(pilot, pilot_n, claimed, strata=strata, power=power)
    assert n is not None
    rate = _inside_rate(truth, sigma, n, claimed, strata)
    assert power - 0.01 <= rate <= power + 0.03
    assert _inside_rate(truth, sigma, int(n * 0.8), claimed, strata) < power - 0.05


def test_range_open_at_zero_takes_the_estimate_as_truth() -> None:
    claimed, sigma, pilot_n, truth = (0.0, 0.98), 0.2, 10, 0.93
    half = interval_quantile(pilot_n) * sigma / math.sqrt(pilot_n)
    n = samples_to_fit((truth * math.exp(-half), truth * math.exp(half)), pilot_n, claimed, truth)
    assert n is not None
    assert 0.79 <= _inside_rate(truth, sigma, n, claimed) <= 0.83


def test_no_basis_gives_none_and_no_width_gives_the_floor() -> None:
    assert samples_to_fit((0.9, 1.1), 10, (0.0, 0.98), 1.0) is None  # estimate outside
    assert samples_to_fit((0.9, 1.1), 10, (0.0, 0.98), None) is None
    assert samples_to_fit((-0.1, 1.1), 10, (2.0, 3.0)) is None  # not a ratio
    assert samples_to_fit((2.5, 2.5), 10, (2.0, 3.0)) == 2
    assert samples_to_fit((2.0, 3.0), 0, (2.0, 3.0)) is None
