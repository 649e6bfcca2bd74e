"""Statistics for the analysis: percentiles, a vectorized bootstrap, significance and power.

Everything here is a pure function of numpy arrays; nothing reads files or the clock.

The bootstrap resamples **conversations** (prompt × repeat: all of its turns and all arms
together, so arms stay paired and a conversation's correlated turns move as one). When every
prompt has at least two conversations it resamples within each prompt (stratified), otherwise
it resamples whole prompts (a scenario imported from logs has one conversation per prompt).
One weight matrix per scenario is shared by every statistic. Medians are found from the
weights without copying the data: values are sorted once, sums of weights below a narrow band
around the middle rank come from one matrix product, and only the band is scanned per resample
(rows whose median falls outside the band — vanishingly rare — are redone in full). Everything
is float64: a float32 product once put a tie at 1.0 at 1.00000010 and called it significant.

Intervals are *expanded* percentile intervals (Hesterberg 2015): the percentile levels are
widened to α′ = 2Φ(−√(n/(n−S))·t₀.₉₇₅,ₙ₋ₛ) (n conversations, S prompts when stratified), which
corrects the percentile bootstrap's narrowness at 10–20 conversations and vanishes as n grows.
Below :data:`harness.analysis.decide.MIN_CONVERSATIONS` there is no interval at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import t as student_t

from harness.analysis import decide

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CONFIDENCE = 0.95
ALPHA = 0.05
DEFAULT_RESAMPLES = 2000
#: Cells (resamples × units) per block of weights; bounds memory to ~100 MB.
_BLOCK_CELLS = 2_000_000
#: Slack for effective counts computed in floating point (equal shares give n ± 1e-13).
_ROUNDING = 1e-9
#: Half-width of the scanned band around the middle rank, in binomial standard deviations.
_BAND_SDS = 6.0
CORRECTION = (
    "expanded percentile (Hesterberg 2015): levels α′ = 2Φ(−√(n/(n−S))·t_{n−S}), "
    "n conversations, S prompts when stratified"
)
#: Within a run only: between runs the cost ratio's interval is the bootstrap's alone.
COST_WIDENING = (
    "cost ratios and cache shares widened to cover cache misses at Laplace's rate "
    "(hits+1)/(eligible+2)"
)

Mode = Literal["stratified", "prompts", "units"]


@dataclass(frozen=True)
class Quantiles:
    """Percentiles and mean of a sample (linear interpolation, like ``numpy.percentile``)."""

    n: int
    p50: float
    p95: float
    p99: float
    mean: float


def quantiles(values: FloatArray) -> Quantiles | None:
    """p50/p95/p99/mean of the finite values, or None when there are none."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    p50, p95, p99 = np.percentile(v, [50.0, 95.0, 99.0])
    return Quantiles(
        n=int(v.size), p50=float(p50), p95=float(p95), p99=float(p99), mean=float(v.mean())
    )


def expanded_levels(n: float, strata: float = 1, confidence: float = CONFIDENCE) -> float | None:
    """Two-sided tail mass α′ of the expanded percentile interval; None when n − strata < 1
    (``n`` and ``strata`` may be effective, fractional counts:
    :meth:`Bootstrap.weighted_design`)."""
    df = n - strata
    if df < 1:
        return None
    t = float(student_t.ppf(1.0 - (1.0 - confidence) / 2.0, df))
    return 2.0 * NormalDist().cdf(-math.sqrt(n / df) * t)


def _quantile(sorted_values: FloatArray, q: float) -> float:
    """Linear-interpolation quantile that keeps ±∞ (numpy gives NaN for ∞ − ∞ or 0·∞)."""
    pos = q * (sorted_values.size - 1)
    i = math.floor(pos)
    frac = pos - i
    lo = float(sorted_values[i])
    if frac == 0.0 or i + 1 >= sorted_values.size:
        return lo
    hi = float(sorted_values[i + 1])
    if lo == hi:
        return lo
    if math.isinf(lo) and math.isinf(hi):
        return lo if frac < 0.5 else hi
    if math.isinf(lo):
        return lo
    if math.isinf(hi):
        return hi
    return lo + (hi - lo) * frac


def interval(
    samples: FloatArray,
    confidence: float = CONFIDENCE,
    *,
    n: int | None = None,
    strata: int = 1,
) -> tuple[float, float] | None:
    """Percentile interval of bootstrap replicates (expanded for ``n`` conversations over
    ``strata`` prompts when ``n`` is given); None when too few replicates are defined or
    ``n`` is below the minimum.

    ±∞ replicates are real (a ratio against an arm that cached nothing) and are kept; only
    NaN (0/0, an empty side) is undefined. If more than half are undefined there is no honest
    interval to give.
    """
    tail = (1.0 - confidence) / 2.0
    if n is not None:
        if n < decide.MIN_CONVERSATIONS:
            return None
        expanded = expanded_levels(n, strata, confidence)
        if expanded is None:
            return None
        tail = expanded / 2.0
    return _percentiles(samples, tail)


def _percentiles(samples: FloatArray, tail: float) -> tuple[float, float] | None:
    """The ``tail`` and ``1 − tail`` percentiles of the defined replicates (see
    :func:`interval`)."""
    defined = samples[~np.isnan(samples)]
    if defined.size == 0 or defined.size < 0.5 * samples.size:
        return None
    v = np.sort(defined)
    return _quantile(v, tail), _quantile(v, 1.0 - tail)


def safe_ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is 0 (a ratio that cannot exist)."""
    if a is None or b is None or b == 0 or not (math.isfinite(a) and math.isfinite(b)):
        return None
    return a / b


def ratio_replicates(a: FloatArray, b: FloatArray) -> FloatArray:
    """Element-wise a / b; x/0 is ±∞ (kept: a real, unbounded ratio), only 0/0 is NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a / b, dtype=np.float64)


@dataclass
class _Median:
    units_sorted: IntArray
    values_sorted: FloatArray
    lo: int
    hi: int
    col_below: int
    col_all: int


@dataclass
class Bootstrap:
    """Vectorized bootstrap of many statistics over one set of resampling units.

    Register statistics with :meth:`median` and :meth:`total` (each returns a handle), then
    :meth:`run` returns one array of ``resamples`` replicates per handle. Every statistic sees
    the same resamples, so differences and ratios between them are paired.

    ``clusters``: the conversation of each unit (a unit is a pairing key, prompt × repeat ×
    turn; all the units of a conversation are drawn together). ``strata``: the prompt of each
    conversation — stratified when prompts have ≥ 2 conversations; prompts with a single one
    (a run cut short, a resume) are pooled into one stratum rather than changing the design;
    only when every prompt has one conversation (logs imported one per prompt) are whole
    prompts resampled. Without ``clusters`` every unit is its own conversation.
    """

    n_units: int
    resamples: int = DEFAULT_RESAMPLES
    seed: int | tuple[int, ...] = 0
    clusters: IntArray | None = None
    strata: IntArray | None = None
    _columns: list[FloatArray] = field(default_factory=list)
    _index: dict[int, int] = field(default_factory=dict)
    _medians: list[tuple[int, _Median | None]] = field(default_factory=list)
    _totals: list[tuple[int, int]] = field(default_factory=list)
    _count: int = 0

    def __post_init__(self) -> None:
        if self.strata is not None and self.strata.size:
            self.strata = _pool_singletons(self.strata)

    @property
    def n_clusters(self) -> int:
        if self.clusters is None or self.clusters.size == 0:
            return self.n_units
        return int(self.clusters.max()) + 1

    def conversations(self, units: IntArray | list[int] | set[int]) -> int:
        """How many conversations the given units belong to."""
        idx = np.fromiter(units, dtype=np.int64) if isinstance(units, set) else np.asarray(units)
        if self.clusters is None:
            return int(np.unique(idx).size)
        return int(np.unique(self.clusters[idx.astype(np.int64)]).size)

    @property
    def mode(self) -> Mode:
        if self.strata is None or self.strata.size == 0:
            return "units"
        sizes = np.bincount(self.strata)
        return "stratified" if int(sizes[sizes > 0].min()) >= 2 else "prompts"

    @property
    def n_strata(self) -> int:
        return 0 if self.strata is None else int(np.unique(self.strata).size)

    def _design(self, n: int, shares: FloatArray | None = None) -> tuple[float, float] | None:
        """(independent units, strata) behind a statistic over ``n`` conversations; None
        below the minimum. ``shares``: the weight each conversation carries in a weighted
        statistic (see :meth:`weighted_design`)."""
        if n < decide.MIN_CONVERSATIONS:
            return None
        if shares is not None:
            # the minimum counts effective conversations: three draws of the prompt that
            # carries the traffic are three samples, however many light prompts ran beside it
            if self.effective_conversations(shares) < decide.MIN_CONVERSATIONS:
                return None
            return self.weighted_design(shares)
        mode = self.mode
        if mode == "stratified":
            return n, self.n_strata
        if mode == "prompts":
            # The prompt is the independent unit; the minimum still counts conversations.
            return max(self.n_strata, 2), 1
        return n, 1

    @staticmethod
    def effective_conversations(shares: FloatArray) -> int:
        """Conversations a statistic weighted by ``shares`` (one per conversation) rests on:
        Kish's (Σa)²/Σa², rounded down — the count of conversations when the shares are equal.
        """
        a = np.asarray(shares, dtype=np.float64)
        square = float((a * a).sum())
        return 0 if square <= 0 else int(float(a.sum()) ** 2 / square + _ROUNDING)

    def weighted_design(self, shares: FloatArray) -> tuple[float, float] | None:
        """(n, S) for :func:`expanded_levels` of a statistic whose conversations carry
        ``shares`` of its weight (one per conversation, 0 for those it does not use).

        A traffic-weighted mean rests mostly on its heavy prompts: with weights 100, 1, 1, 1
        and 10 conversations each it has about 10 independent conversations, not 40, and the
        small-sample expansion must be that of 10. Within each resampling stratum the
        effective count is Kish's (Σa)²/Σa²; across strata the degrees of freedom n − S are
        Welch–Satterthwaite's (equal spreads assumed) and n / (n − S) the ratio of the
        unbiased to the resampled variance. Equal shares over prompts of equal repeats give
        the unweighted (n, S); None when a stratum has a single effective conversation.
        """
        a: FloatArray = np.asarray(shares, dtype=np.float64)
        groups: IntArray
        mode = self.mode
        if mode == "prompts" and self.strata is not None:
            # the prompt is the unit drawn: its conversations' shares move together
            codes = np.unique(self.strata, return_inverse=True)[1].astype(np.int64)
            a = np.bincount(codes, weights=a).astype(np.float64)
            groups = np.zeros(a.size, dtype=np.int64)
        elif mode == "stratified" and self.strata is not None:
            groups = self.strata
        else:
            groups = np.zeros(a.size, dtype=np.int64)
        keep = a > 0
        if not keep.any():
            return None
        a, groups = a[keep] / a[keep].sum(), groups[keep]
        total = np.bincount(groups, weights=a)
        square = np.bincount(groups, weights=a * a)
        used = total > 0
        total, square = total[used], square[used]
        kish = total * total / square
        if (kish - 1.0 <= 1e-12).any():
            return None
        unbiased = float(square.sum())
        resampled = float((square * (kish - 1.0) / kish).sum())
        df = unbiased**2 / float((square * square / (kish - 1.0)).sum())
        n_eff = unbiased / resampled * df
        return n_eff, n_eff - df

    def interval(
        self, samples: FloatArray, n: int, shares: FloatArray | None = None
    ) -> tuple[float, float] | None:
        """The expanded percentile interval for a statistic over ``n`` conversations
        (weighted by ``shares`` per conversation: :meth:`weighted_design`)."""
        design = self._design(n, shares)
        if design is None:
            return None
        if shares is None:
            return interval(samples, n=int(design[0]), strata=int(design[1]))
        tail = expanded_levels(*design)
        return None if tail is None else _percentiles(samples, tail / 2.0)

    def widen_log(
        self,
        ci: tuple[float, float] | None,
        value: float,
        se_log: float,
        n: int,
        shares: FloatArray | None = None,
    ) -> tuple[float, float] | None:
        """``ci`` widened to cover ``value · exp(±q · se_log)`` at the interval's own
        (expanded) level: a floor from a model of the spread the resamples may not show."""
        q = self._quantile(ci, n, shares) if value > 0 and se_log > 0 else None
        if ci is None or q is None:
            return ci
        half = q * se_log
        return min(ci[0], value * math.exp(-half)), max(ci[1], value * math.exp(half))

    def widen(
        self, ci: tuple[float, float] | None, value: float, se: float, n: int
    ) -> tuple[float, float] | None:
        """``ci`` widened to cover ``value ± q · se`` (a difference; see :meth:`widen_log`)."""
        q = self._quantile(ci, n) if se > 0 else None
        if ci is None or q is None:
            return ci
        return min(ci[0], value - q * se), max(ci[1], value + q * se)

    def _quantile(
        self, ci: tuple[float, float] | None, n: int, shares: FloatArray | None = None
    ) -> float | None:
        """The normal quantile of the interval's own (expanded) level over ``n`` conversations."""
        design = self._design(n, shares)
        if ci is None or design is None:
            return None
        tail = expanded_levels(*design)
        return None if tail is None else NormalDist().inv_cdf(1.0 - tail / 2.0)

    def _column(self, units: IntArray, weights: FloatArray | None = None) -> int:
        col = np.bincount(units, weights=weights, minlength=self.n_units).astype(np.float64)
        # Statistics over the same rows (TTFT and total of the same requests) share columns.
        digest = hash(col.tobytes())
        found = self._index.get(digest)
        if found is not None and np.array_equal(self._columns[found], col):
            return found
        self._columns.append(col)
        self._index[digest] = len(self._columns) - 1
        return len(self._columns) - 1

    def median(self, units: IntArray, values: FloatArray) -> int:
        """Register the median of ``values`` (one per entry of ``units``; NaN entries dropped)."""
        handle = self._count
        self._count += 1
        keep = np.isfinite(values)
        units, values = units[keep], values[keep]
        if values.size == 0:
            self._medians.append((handle, None))
            return handle
        order = np.argsort(values, kind="stable")
        us, vs = units[order].astype(np.int64), values[order]
        n = vs.size
        per_unit = int(np.bincount(us).max())
        half_width = int(_BAND_SDS * math.sqrt(n * per_unit) / 2.0) + 2
        lo, hi = max(0, n // 2 - half_width), min(n, n // 2 + half_width + 1)
        col_below = self._column(us[:lo])
        col_all = self._column(us)
        self._medians.append((handle, _Median(us, vs, lo, hi, col_below, col_all)))
        return handle

    def total(self, units: IntArray, values: FloatArray) -> int:
        """Register the weighted sum of ``values`` (NaN entries count as 0)."""
        handle = self._count
        self._count += 1
        vals = np.where(np.isfinite(values), values, 0.0)
        self._totals.append((handle, self._column(units, vals)))
        return handle

    def weights(self, rng: np.random.Generator, rows: int) -> FloatArray:
        """``rows`` resampling weight vectors over the units (how often each is drawn)."""
        k = self.n_clusters
        mode = self.mode
        if mode == "units" or self.strata is None:
            per_conv = _multinomial_counts(rng, rows, k)
        elif mode == "prompts":
            codes = np.unique(self.strata, return_inverse=True)[1].astype(np.int64)
            per_prompt = _multinomial_counts(rng, rows, int(codes.max()) + 1)
            per_conv = per_prompt[:, codes]
        else:
            per_conv = _stratified_counts(rng, rows, self.strata)
        if self.clusters is None:
            return per_conv
        return np.ascontiguousarray(per_conv[:, self.clusters])

    def run(self) -> list[FloatArray]:
        """Replicates for every registered statistic, indexed by handle."""
        out = [np.full(self.resamples, np.nan) for _ in range(self._count)]
        if self.n_units == 0 or self._count == 0:
            return out
        matrix = (
            np.stack(self._columns, axis=1)
            if self._columns
            else np.zeros((self.n_units, 0), dtype=np.float64)
        )
        rng = np.random.default_rng(self.seed)
        block = max(1, min(self.resamples, _BLOCK_CELLS // max(1, self.n_units)))
        for start in range(0, self.resamples, block):
            rows = min(block, self.resamples - start)
            weights = self.weights(rng, rows)
            sums = weights @ matrix
            for handle, col in self._totals:
                out[handle][start : start + rows] = sums[:, col]
            for handle, med in self._medians:
                if med is not None:
                    out[handle][start : start + rows] = _weighted_medians(weights, sums, med)
        return out


def _multinomial_counts(rng: np.random.Generator, rows: int, n: int) -> FloatArray:
    """``rows`` bootstrap weight vectors: how often each of ``n`` units is drawn in n draws."""
    draws = rng.integers(0, n, size=(rows, n), dtype=np.int64)
    draws += (np.arange(rows, dtype=np.int64) * n)[:, None]
    counts = np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n)
    return counts.astype(np.float64)


def _pool_singletons(strata: IntArray) -> IntArray:
    """Strata of one conversation merged into one pooled stratum (or, if there is only one
    such stratum, into the largest), unless every stratum has one conversation."""
    sizes = np.bincount(strata)
    present = sizes > 0
    single = np.flatnonzero(sizes == 1)
    if single.size == 0 or single.size == int(present.sum()):
        return strata
    target = int(single[0]) if single.size >= 2 else int(np.argmax(sizes))
    pooled = strata.copy()
    pooled[np.isin(strata, single)] = target
    return pooled


def _stratified_counts(rng: np.random.Generator, rows: int, strata: IntArray) -> FloatArray:
    """Weight vectors drawing, within each stratum of k units, k units with replacement."""
    n = strata.size
    order = np.argsort(strata, kind="stable")
    sorted_strata = strata[order]
    starts_of = np.searchsorted(sorted_strata, sorted_strata, side="left")
    sizes = np.searchsorted(sorted_strata, sorted_strata, side="right") - starts_of
    pick = starts_of[None, :] + (rng.random((rows, n)) * sizes[None, :]).astype(np.int64)
    units = order[np.minimum(pick, starts_of + sizes - 1)]
    units += (np.arange(rows, dtype=np.int64) * n)[:, None]
    counts = np.bincount(units.ravel(), minlength=rows * n).reshape(rows, n)
    return counts.astype(np.float64)


def _first_at_least(cumulative: npt.NDArray[np.floating[Any]], target: FloatArray) -> IntArray:
    """Per row, the first column whose cumulative weight reaches ``target``."""
    return np.asarray((cumulative < target[:, None]).sum(axis=1), dtype=np.int64)


def _weighted_medians(weights: FloatArray, sums: FloatArray, med: _Median) -> FloatArray:
    """Median of each weighted resample, identical to ``numpy.median`` of the expanded data."""
    total = sums[:, med.col_all]
    below = sums[:, med.col_below]
    half = total / 2.0
    band = np.cumsum(weights[:, med.units_sorted[med.lo : med.hi]], axis=1) + below[:, None]
    n = med.values_sorted.size
    # The middle of an even-sized resample averages the two central values: the first rank
    # reaching half the weight, and the first rank exceeding it.
    lower = _first_at_least(band, half) + med.lo
    upper = np.asarray((band <= half[:, None]).sum(axis=1), dtype=np.int64) + med.lo
    outside = ((below >= half) & (med.lo > 0)) | ((band[:, -1] <= half) & (med.hi < n))
    if outside.any():
        full = np.cumsum(weights[outside][:, med.units_sorted], axis=1)
        lower[outside] = _first_at_least(full, half[outside])
        upper[outside] = np.asarray((full <= half[outside][:, None]).sum(axis=1), dtype=np.int64)
    lower = np.minimum(lower, n - 1)
    upper = np.minimum(upper, n - 1)
    result = (med.values_sorted[lower] + med.values_sorted[upper]) / 2.0
    result[total <= 0] = np.nan
    return np.asarray(result, dtype=np.float64)


# --- rare events --------------------------------------------------------------------------------


def cache_event_var(
    missed_extra: FloatArray,
    hit: FloatArray,
    n_requests: float,
    weights: FloatArray | None = None,
) -> float:
    """Variance of an arm's mean cost per request from its cache hits and misses, taken as
    Bernoulli draws at a rate from Laplace's rule of succession, (hits + 1) / (eligible + 2).

    ``hit``: 1/0 per request that could have hit (warm, long enough); ``missed_extra``: what
    each of those would have cost more had it missed (0 for a miss). With 10 warm turns that
    all hit, a resample never shows a miss, so the bootstrap sees no spread, while a 1-in-10
    miss rate is entirely plausible; this variance keeps that possibility in the interval.
    It shrinks as 1/n, so large samples are left to the bootstrap.

    ``weights``: each of those requests' weight in a weighted mean whose weights sum to
    ``n_requests`` (a prompt's traffic ``weight``); the rate stays one of requests seen.
    """
    k = int(hit.size)
    h = float(hit.sum())
    if k == 0 or h == 0 or n_requests <= 0:
        return 0.0  # never hit: nothing says this arm caches at all
    per_hit = float(missed_extra[hit > 0].mean())
    p = (h + 1.0) / (k + 2.0)
    draws = k if weights is None else float((weights * weights).sum())
    return per_hit**2 * draws * p * (1.0 - p) / n_requests**2


# --- power ------------------------------------------------------------------------------------


def _z(p: float) -> float:
    return NormalDist().inv_cdf(p)


def robust_sigma_log(values: FloatArray) -> float | None:
    """Spread of log(values) as a normal-consistent MAD (robust to a few outliers)."""
    v = values[np.isfinite(values) & (values > 0)]
    if v.size < 3:
        return None
    logs = np.log(v)
    return float(1.4826 * np.median(np.abs(logs - np.median(logs))))


#: Log-spread of latency a plan assumes unless told (``--sigma``, ``--sigma-from``): the
#: ``power.sigma_log`` that summaries of the emulator's ``parity`` profile report — 0.40 on
#: the quickstart, 0.40–0.42 on the support bot (docs/statistics.md, "Validity study"). It
#: pools cold and warm turns, as the p50 gates do: turn 1 is 1.6× slower, which widens the
#: pooled spread from the ~0.3 of one turn's requests.
PARITY_SIGMA_LOG = 0.40
#: Power a plan aims for unless told otherwise (``--target-power``).
DEFAULT_TARGET_POWER = 0.80
#: The latency equivalence margin the power is computed against: "detected" means the
#: interval's lower bound clears 1 + margin, the rule the gate and the verdicts use.
LATENCY_MARGIN = decide.DEFAULT_MARGINS.latency_pct / 100


def _gap(effect: float, margin: float) -> float:
    """Distance on the log scale between the effect to detect and the margin it must clear."""
    if effect <= -1 or effect == 0:
        raise ValueError("effect must be a non-zero relative change greater than -100 %")
    if margin < 0:
        raise ValueError("margin must be ≥ 0")
    gap = abs(math.log1p(effect)) - math.log1p(margin)
    if gap <= 0:
        raise ValueError(
            f"an effect of {effect:.0%} does not exceed the ±{margin:.0%} equivalence margin, "
            "so no number of samples shows it beyond the margin"
        )
    return gap


def required_samples(
    effect: float,
    sigma_log: float,
    *,
    alpha: float = ALPHA,
    power: float = DEFAULT_TARGET_POWER,
    margin: float = 0.0,
    run_var: float = 0.0,
) -> int | None:
    """Samples per arm so that a true ratio of medians of ``1 + effect`` puts the 95 % interval's
    lower bound beyond ``1 + margin`` (the gate's and the verdicts' rule) with probability
    ``power``.

    Latencies are taken as lognormal with log-spread ``sigma_log``. The log of a sample median
    has variance ≈ (π/2)·σ²/n (the median's efficiency on normal data is 2/π), and the two arms'
    medians are treated as independent (pairing can only help). The bound clears the margin when
    log ratio − z₁₋α/₂·se > ln(1 + margin), so se must be at most
    (ln(1 + effect) − ln(1 + margin)) / (z₁₋α/₂ + z_power), and
    n = π σ² / (se² − run_var). ``run_var``: run-to-run variance of the log ratio that no
    sample size removes (between runs); None when it alone is too large for the target.
    """
    target_se = _gap(effect, margin) / (_z(1 - alpha / 2) + _z(power))
    room = target_se**2 - run_var
    if room <= 0:
        return None
    if sigma_log <= 0:
        return 2
    n = math.pi * sigma_log**2 / room
    return max(2, math.ceil(n - 1e-9))  # float noise must not add a sample


def repeats_for_power(
    effect: float,
    sigma_log: float,
    *,
    samples_per_repeat: int = 1,
    alpha: float = ALPHA,
    power: float = DEFAULT_TARGET_POWER,
    margin: float = 0.0,
    run_var: float = 0.0,
) -> int | None:
    """Repeats per arm for :func:`required_samples`, when each repeat yields several samples
    (prompts × turns); None when no number of repeats reaches ``power``."""
    need = required_samples(
        effect, sigma_log, alpha=alpha, power=power, margin=margin, run_var=run_var
    )
    if need is None:
        return None
    return max(1, math.ceil(need / max(1, samples_per_repeat)))


def scale_for_power(
    se_log: float,
    n_now: int,
    effect: float,
    *,
    alpha: float = ALPHA,
    power: float = DEFAULT_TARGET_POWER,
    margin: float = 0.0,
) -> int | None:
    """Samples needed, scaled from the standard error ``se_log`` of a log ratio seen with
    ``n_now`` samples (the observed spread, including pairing, prompt mix and drift), for the
    interval to clear ``1 + margin`` at a true ``1 + effect`` with probability ``power``."""
    if not math.isfinite(se_log) or se_log < 0 or n_now <= 0 or effect == 0:
        return None
    if se_log == 0:  # no spread at all: any sample detects any effect
        return 2
    try:
        target_se = _gap(effect, margin) / (_z(1 - alpha / 2) + _z(power))
    except ValueError:
        return None
    return max(2, math.ceil(n_now * (se_log / target_se) ** 2 - 1e-9))


def interval_quantile(n: int, strata: int = 1) -> float:
    """The normal quantile an expanded 95 % interval over ``n`` conversations reaches out to
    (1.96 for large ``n``; ∞ when there are too few for an interval)."""
    tail = expanded_levels(n, strata)
    return math.inf if tail is None or tail <= 0 else -_z(tail / 2.0)


def samples_to_fit(
    ci: tuple[float, float],
    n_now: int,
    claimed: tuple[float, float],
    estimate: float | None = None,
    *,
    strata: int = 1,
    power: float = DEFAULT_TARGET_POWER,
) -> int | None:
    """Samples for a 95 % interval to lie inside ``claimed`` with probability ``power`` when the
    truth is in it, scaled from an interval ``ci`` seen with ``n_now`` samples (a pilot run).

    Ratios on the log scale (``ci`` and ``claimed`` positive; a relative change passes
    1 + change). The truth is taken at the range's log-middle when both ends are positive,
    else (an open end at 0, "cheaper") at ``estimate``, which must lie inside — the plug-in the
    hint then says it assumes. Intervals here are expanded at small samples
    (:func:`interval_quantile`, ``strata`` prompts), so the pilot's standard error is its
    interval's log-width over twice the pilot's own quantile, and the plan's interval is as
    wide as its size makes it. The interval must clear both ends, so with a two-ended range
    each end may miss in half of ``1 − power``. None when nothing can be said (no finite
    width, truth outside the range)."""
    lo, hi = ci
    c0, c1 = claimed
    if n_now <= 0 or not (0 < lo <= hi) or not math.isfinite(hi) or c1 <= 0 or c0 >= c1:
        return None
    pilot_q = interval_quantile(n_now, strata)
    if not math.isfinite(pilot_q):
        return None
    if c0 > 0:  # truth at the log-middle: each end is half the range's log-width away
        gap = math.log(c1 / c0) / 2
        miss = _z(1 - (1 - power) / 2)
    else:
        if estimate is None or not 0 < estimate < c1:
            return None
        gap = math.log(c1 / estimate)
        miss = _z(power)
    spread = (math.log(hi) - math.log(lo)) / (2 * pilot_q) * math.sqrt(n_now)  # per sample
    if spread == 0:
        return 2

    def fits(n: int) -> bool:
        return (interval_quantile(n, strata) + miss) * spread / math.sqrt(n) <= gap

    n = max(2, strata + 1)
    while not fits(n):  # doubling, then bisection: the condition is monotone in n
        n *= 2
        if n > 10**9:
            return None
    low = n // 2
    while low + 1 < n:
        mid = (low + n) // 2
        if fits(mid):
            n = mid
        else:
            low = mid
    return n
