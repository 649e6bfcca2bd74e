"""Charts as inline SVG text, drawn with matplotlib's object API (Agg canvas, no pyplot state).

Text stays text (``svg.fonttype: none``) so charts are small and searchable; every chart gets
its own id salt so clip paths of several inline SVGs in one page never collide. Point clouds are
subsampled to a fixed number of points per group, so a chart's size does not grow with the run.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.arms import Arm
from harness.fmt import num, pct, usd
from harness.summary import ArmSummary, Comparison, ConversationStateSummary

#: Chart width in inches (96 px each): two charts side by side at about 1:1 scale.
WIDTH_IN = 5.8
#: Points drawn per arm and cold/warm group; the box plot uses every value.
MAX_POINTS = 120

_PALETTE = {
    "chat": "#3b6ea8",
    "responses": "#d9731a",
    "responses_chained": "#3f8f3f",
    "responses_conversation": "#a33f5f",
}
_EXTRA = ("#7a5aa6", "#5f8f8f", "#8f7a3f", "#c25a9c", "#4f4f4f", "#b8a000")
_TEXT = "#222222"
_GRID = "#dddddd"
_COLD = "#b2182b"


def arm_color(arm: str, order: Sequence[str] = ()) -> str:
    """Stable colour of an arm; replicates (``chat#2``) get a lighter shade of their arm's, a
    named variant (``responses+store``) a colour of its own."""
    parsed = Arm.of(arm)
    primary = parsed.primary
    color = _PALETTE.get(primary)
    if color is None:
        idx = list(order).index(primary) if primary in order else len(primary)
        color = _EXTRA[idx % len(_EXTRA)]
    if parsed.is_replicate:
        r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
        r, g, b = (int(c + (255 - c) * 0.45) for c in (r, g, b))
        color = f"#{r:02x}{g:02x}{b:02x}"
    return color


# ``vert=False`` is deprecated from matplotlib 3.11; ``orientation`` exists from 3.10.
_HORIZONTAL: dict[str, Any] = (
    {"orientation": "horizontal"}
    if tuple(int(x) for x in re.findall(r"\d+", matplotlib.__version__)[:2]) >= (3, 10)
    else {"vert": False}
)

_XML_HEAD = re.compile(r"^.*?(?=<svg\b)", re.S)


def _svg(fig: Figure, salt: str) -> str:
    FigureCanvasAgg(fig)
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}), warnings.catch_warnings():
        # constrained layout gives up on very small charts with a warning; the chart is still
        # drawn, just not re-spaced — not worth failing a report over
        warnings.filterwarnings("ignore", message=".*constrained.*layout.*", category=UserWarning)
        fig.savefig(
            buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight"
        )
    svg = _XML_HEAD.sub("", buf.getvalue(), count=1)
    # Scale down with the page, never above the drawn size: keep the viewBox, cap the width.
    return re.sub(
        r'<svg([^>]*?) width="([0-9.]+)pt" height="[^"]*"',
        r'<svg\1 aria-hidden="true" style="width:100%;max-width:\2pt;height:auto"',
        svg,
        count=1,
    )


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=96, layout="constrained")
    ax = fig.add_subplot()
    ax.tick_params(colors=_TEXT, labelsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


@dataclass(frozen=True)
class LatencySeries:
    """One arm's latencies (ms) of successful measured requests, split cold / warm."""

    arm: str
    cold: np.ndarray[Any, np.dtype[np.float64]]
    warm: np.ndarray[Any, np.dtype[np.float64]]


def _sample(
    values: np.ndarray[Any, np.dtype[np.float64]],
    rng: np.random.Generator,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    if values.size <= MAX_POINTS:
        return values
    return np.asarray(rng.choice(values, size=MAX_POINTS, replace=False), dtype=np.float64)


def latency_chart(series: Sequence[LatencySeries], title: str, salt: str) -> str | None:
    """Horizontal box plots per arm, cold (turn 1) and warm separately, with sampled points."""
    series = [s for s in series if s.cold.size or s.warm.size]
    if not series:
        return None
    rng = np.random.default_rng(0)
    fig, ax = _figure(WIDTH_IN, max(2.0, 0.9 + 0.62 * len(series)))
    order = [s.arm for s in series]
    every = np.concatenate([np.concatenate([s.cold, s.warm]) for s in series])
    positive = every[every > 0]
    log = positive.size > 0 and positive.max() / max(positive.min(), 1e-9) > 20
    labels = []
    for k, s in enumerate(reversed(series)):
        color = arm_color(s.arm, order)
        for values, offset, cold in ((s.cold, 0.17, True), (s.warm, -0.17, False)):
            if not values.size:
                continue
            y = k + offset
            bp = ax.boxplot(
                values,
                positions=[y],
                widths=0.26,
                whis=(5, 95),
                **_HORIZONTAL,
                showfliers=False,
                patch_artist=True,
                manage_ticks=False,
            )
            for box in bp["boxes"]:
                box.set(
                    facecolor=color,
                    alpha=0.35 if cold else 0.2,
                    edgecolor=_COLD if cold else color,
                    linewidth=1.4 if cold else 1.0,
                )
            for part in ("whiskers", "caps"):
                for line in bp[part]:
                    line.set(color=_COLD if cold else color, linewidth=1.0)
            for line in bp["medians"]:
                line.set(color=_TEXT, linewidth=1.6)
            pts = _sample(values, rng)
            jitter = rng.uniform(-0.09, 0.09, pts.size)
            ax.scatter(
                pts,
                y + jitter,
                s=9 if cold else 6,
                marker="^" if cold else "o",
                color=_COLD if cold else color,
                alpha=0.75 if cold else 0.5,
                linewidths=0,
                zorder=3,
            )
        labels.append(f"{s.arm}\ncold {s.cold.size} · warm {s.warm.size}")
    ax.set_yticks(range(len(series)), labels)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("ms (box: 25–75 %, whiskers: 5–95 %, line: median)", color=_TEXT, fontsize=9)
    ax.grid(axis="x", color=_GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title, loc="left", fontsize=11, color=_TEXT)
    fig.legend(
        handles=[
            Line2D([], [], marker="^", color=_COLD, linestyle="", label="cold (turn 1)"),
            Line2D([], [], marker="o", color="#777777", linestyle="", label="warm (later turns)"),
        ],
        loc="outside lower center",
        fontsize=8,
        frameon=False,
        ncols=2,
    )
    return _svg(fig, salt)


def cache_chart(arms: Mapping[str, ArmSummary], title: str, salt: str) -> str | None:
    """Mean cached tokens per turn and arm, over the mean input tokens (outline)."""
    rows = [(arm, s) for arm, s in arms.items() if s.per_turn]
    turns = sorted({t.turn for _, s in rows for t in s.per_turn})
    if not rows or not any(t.input_tokens_mean for _, s in rows for t in s.per_turn):
        return None
    fig, ax = _figure(WIDTH_IN, 3.0)
    order = [a for a, _ in rows]
    width = 0.8 / len(rows)
    for k, (arm, s) in enumerate(rows):
        by_turn = {t.turn: t for t in s.per_turn}
        xs = [i + (k - (len(rows) - 1) / 2) * width for i in range(len(turns))]
        inputs = [(by_turn[t].input_tokens_mean or 0.0) if t in by_turn else 0.0 for t in turns]
        cached = [(by_turn[t].cached_tokens_mean or 0.0) if t in by_turn else 0.0 for t in turns]
        color = arm_color(arm, order)
        ax.bar(xs, inputs, width * 0.9, facecolor="none", edgecolor=color, linewidth=1.0)
        ax.bar(xs, cached, width * 0.9, color=color, label=arm)
        for x, c, i in zip(xs, cached, inputs, strict=True):
            if i:
                ax.annotate(
                    pct(c / i),
                    (x, i),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color=_TEXT,
                    xytext=(0, 1),
                    textcoords="offset points",
                )
    ax.set_xticks(range(len(turns)), [f"turn {t}" + (" (cold)" if t == 1 else "") for t in turns])
    ax.set_ylabel("tokens per request (mean)", fontsize=9, color=_TEXT)
    ax.grid(axis="y", color=_GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    handles = [Patch(color=arm_color(a, order), label=a) for a in order]
    handles.append(Patch(facecolor="none", edgecolor="#777777", label="input tokens"))
    fig.legend(
        handles=handles,
        fontsize=8,
        frameon=False,
        loc="outside lower center",
        ncols=min(len(handles), 5),
    )
    ax.set_title(title, loc="left", fontsize=11, color=_TEXT)
    return _svg(fig, salt)


def state_cache_chart(state: ConversationStateSummary, title: str, salt: str) -> str | None:
    """Cached share of the input by turn, one line per arm (the conversation-state section)."""
    lines = {
        arm: [(t.turn, t.cached_share) for t in s.turns if t.cached_share is not None]
        for arm, s in state.arms.items()
    }
    lines = {arm: points for arm, points in lines.items() if points}
    if not lines:
        return None
    fig, ax = _figure(WIDTH_IN, 3.0)
    order = list(lines)
    styles = ("-", "--", ":", "-.")
    for k, (arm, points) in enumerate(lines.items()):
        xs, ys = zip(*points, strict=True)
        ax.plot(
            xs,
            [y * 100 for y in ys],
            linestyle=styles[k % len(styles)],
            marker="o",
            markersize=3,
            color=arm_color(arm, order),
            label=arm,
        )
    turns = sorted({x for points in lines.values() for x, _ in points})
    ax.set_xticks(turns, [f"{t}" + (" (cold)" if t == 1 else "") for t in turns])
    ax.set_xlabel("turn", fontsize=9, color=_TEXT)
    ax.set_ylabel("cached share of input (%)", fontsize=9, color=_TEXT)
    ax.set_ylim(0, 100)
    ax.grid(axis="y", color=_GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(fontsize=8, frameon=False, loc="outside lower center", ncols=min(len(order), 3))
    ax.set_title(title, loc="left", fontsize=11, color=_TEXT)
    return _svg(fig, salt)


def cost_chart(arms: Mapping[str, ArmSummary], title: str, salt: str) -> str | None:
    """Cost per 1,000 requests per arm with its 95 % interval; per-1M projection as labels."""
    rows = [
        (arm, s.cost_usd)
        for arm, s in arms.items()
        if s.cost_usd is not None and s.cost_usd.per_request_usd.value is not None
    ]
    if not rows:
        return None
    fig, ax = _figure(WIDTH_IN, max(1.8, 0.7 + 0.45 * len(rows)))
    order = [a for a, _ in rows]
    ys = list(range(len(rows)))[::-1]
    vals = [(c.per_request_usd.value or 0.0) * 1000 for _, c in rows]
    # max(0, …): with identical costs the interval can sit a rounding error off the value,
    # and matplotlib rejects negative error bars
    lo = [
        max(0.0, v - (c.per_request_usd.ci95[0] * 1000 if c.per_request_usd.ci95 else v))
        for v, (_, c) in zip(vals, rows, strict=True)
    ]
    hi = [
        max(0.0, (c.per_request_usd.ci95[1] * 1000 if c.per_request_usd.ci95 else v) - v)
        for v, (_, c) in zip(vals, rows, strict=True)
    ]
    ax.barh(
        ys,
        vals,
        0.6,
        color=[arm_color(a, order) for a in order],
        xerr=[lo, hi],
        error_kw={"ecolor": _TEXT, "capsize": 3, "linewidth": 1},
    )
    for y, v, up, (_, c) in zip(ys, vals, hi, rows, strict=True):
        label = f"{usd(v)} / 1k · {usd(c.per_1m_requests_usd)} / 1M"
        ax.annotate(
            label.replace("$", r"\$"),
            (v + up, y),
            va="center",
            fontsize=8,
            color=_TEXT,
            xytext=(6, 0),
            textcoords="offset points",
        )
    ax.set_yticks(ys, order)
    top = max(v + u for v, u in zip(vals, hi, strict=True))
    ax.set_xlim(0, top * 1.7 if top > 0 else 1)
    ax.set_xlabel("USD per 1,000 requests (mean, 95 % CI)", fontsize=9, color=_TEXT)
    ax.grid(axis="x", color=_GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title, loc="left", fontsize=11, color=_TEXT)
    return _svg(fig, salt)


def similarity_chart(
    comparisons: Mapping[str, Comparison],
    title: str,
    salt: str,
) -> str | None:
    """Mean similarity per comparison and kind, with the A/A noise floor and the lowest pair."""
    bars: list[tuple[str, float, float | None, float | None, bool]] = []
    for key, c in comparisons.items():
        s = c.similarity
        for kind, stats in (
            ("text", s.text),
            ("JSON", s.json_),
            ("tool calls", s.tool_calls),
            ("semantic", s.semantic),
        ):
            if stats is None or stats.mean is None:
                continue
            bars.append(
                (
                    f"{key.replace('_vs_', ' vs ')} · {kind}",
                    stats.mean,
                    stats.noise_floor,
                    stats.min,
                    c.replicate,
                )
            )
    if not bars:
        return None
    fig, ax = _figure(WIDTH_IN, max(2.0, 1.0 + 0.36 * len(bars)))
    ys = list(range(len(bars)))[::-1]
    for y, (_, mean, floor, low, replicate) in zip(ys, bars, strict=True):
        ax.barh(y, mean, 0.6, color="#9aa9b8" if replicate else "#3b6ea8")
        if low is not None:
            ax.plot([low], [y], marker="o", color=_TEXT, markersize=4, linestyle="")
        if floor is not None and not replicate:
            ax.plot([floor, floor], [y - 0.38, y + 0.38], color=_COLD, linewidth=2.2)
        ax.annotate(
            num(mean),
            (mean, y),
            va="center",
            fontsize=8,
            xytext=(3, 0),
            textcoords="offset points",
            color=_TEXT,
        )
    ax.set_yticks(ys, [b[0] for b in bars])
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("similarity (1 = same)", fontsize=9, color=_TEXT)
    ax.grid(axis="x", color=_GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(
        handles=[
            Patch(color="#3b6ea8", label="mean"),
            Patch(color="#9aa9b8", label="A/A replicate"),
            Line2D([], [], color=_COLD, linewidth=2.2, label="noise floor"),
            Line2D([], [], marker="o", color=_TEXT, linestyle="", label="lowest pair"),
        ],
        fontsize=8,
        frameon=False,
        loc="outside lower center",
        ncols=4,
    )
    ax.set_title(title, loc="left", fontsize=11, color=_TEXT)
    return _svg(fig, salt)


@dataclass(frozen=True)
class RatioRow:
    label: str
    value: float
    ci95: tuple[float, float] | None


def ratio_chart(rows: Sequence[RatioRow], title: str, salt: str, xlabel: str) -> str | None:
    """Forest plot of ratios with their 95 % intervals around 1 (no change)."""
    rows = [r for r in rows if r.value == r.value]
    if not rows:
        return None
    fig, ax = _figure(WIDTH_IN, max(1.8, 0.8 + 0.34 * len(rows)))
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows, strict=True):
        lo, hi = r.ci95 if r.ci95 else (r.value, r.value)
        color = "#3f8f3f" if hi < 1 else _COLD if lo > 1 else "#555555"
        ax.plot([lo, hi], [y, y], color=color, linewidth=2)
        ax.plot([r.value], [y], marker="o", color=color, markersize=5)
    ax.axvline(1.0, color="#888888", linewidth=1, linestyle="--")
    ax.set_yticks(ys, [r.label for r in rows])
    ax.set_xlabel(xlabel, fontsize=9, color=_TEXT)
    ax.grid(axis="x", color=_GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title, loc="left", fontsize=11, color=_TEXT)
    return _svg(fig, salt)


@dataclass(frozen=True)
class TrendSeries:
    """One comparison's or arm's metric over runs: x are run positions, NaN where a run lacks
    it; ``low``/``high`` the 95 % interval (NaN: none)."""

    subject: str
    x: np.ndarray[Any, np.dtype[np.float64]]
    value: np.ndarray[Any, np.dtype[np.float64]]
    low: np.ndarray[Any, np.dtype[np.float64]]
    high: np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class TrendPanel:
    """One metric's panel: its label, the value of "no change" (1 for ratios, None for
    shares), whether values are proportions (shown as %), its series, and the smallest span its
    axis shows (so a 0.04 % wobble of a cost ratio is not drawn as a cliff)."""

    label: str
    reference: float | None
    percent: bool
    series: Sequence[TrendSeries]
    min_span: float = 0.0


def _span(ax: Any, values: list[float], min_span: float) -> None:
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return
    lo, hi = min(finite), max(finite)
    if hi - lo < min_span:
        mid = (lo + hi) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    pad = (hi - lo) * 0.08
    ax.set_ylim(lo - pad, hi + pad)


def trend_chart(runs: Sequence[str], panels: Sequence[TrendPanel], title: str, salt: str) -> str:
    """Metrics over the last runs (oldest left), one panel each, with 95 % intervals as bands."""
    panels = [p for p in panels if p.series]
    rows = max(1, len(panels))
    fig = Figure(figsize=(WIDTH_IN, 0.9 + 1.45 * rows), dpi=96, layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    subjects = sorted({s.subject for p in panels for s in p.series})
    for ax, panel in zip(axes, panels, strict=False):
        ax.tick_params(colors=_TEXT, labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        scale = 100.0 if panel.percent else 1.0
        seen: list[float] = []
        for s in panel.series:
            color = arm_color(s.subject.split("_vs_")[0], subjects)
            band = np.isfinite(s.low) & np.isfinite(s.high)
            if band.any():
                ax.fill_between(
                    s.x,
                    s.low * scale,
                    s.high * scale,
                    where=band,
                    color=color,
                    alpha=0.14,
                    linewidth=0,
                    interpolate=False,
                )
            ax.plot(s.x, s.value * scale, marker="o", markersize=3.5, color=color, label=s.subject)
            seen += [*(s.value * scale), *(s.low * scale), *(s.high * scale)]
        if panel.reference is not None:
            ax.axhline(panel.reference * scale, color="#888888", linewidth=0.8, linestyle="--")
            seen.append(panel.reference * scale)
        _span(ax, seen, panel.min_span * scale)
        ax.set_ylabel(panel.label + (" %" if panel.percent else ""), color=_TEXT, fontsize=8)
        ax.grid(axis="y", color=_GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(fontsize=7, frameon=False, loc="upper left", ncols=3)
    axes[-1].set_xticks(range(len(runs)), list(runs), rotation=30, ha="right", fontsize=7)
    axes[0].set_title(title, loc="left", fontsize=11, color=_TEXT)
    return _svg(fig, salt)
