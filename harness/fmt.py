"""One spelling of every number: terminal tables, Markdown, HTML, JUnit and the gate text.

Issue 15 found one effect printed three ways (``0.98× (0.70–1.17) *``, ``0.98*``, ``0.980 (95 % CI
0.700 to 1.170)``); every output now calls these functions instead. Each takes ``None`` or a
non-finite value (no TTFT without streaming, a ratio over zero) and returns an em dash for it. A
value that rounds to zero prints without a sign (``0.0 pts``, never ``-0.0 pts``), and a unit
switch is decided on the rounded value (99.95 ms → ``100 ms``, not ``100.0 ms``).

The output is plain text: HTML escaping is jinja's job (autoescape), Markdown cells have their own
escaping. This module depends on the standard library only, so that ``harness.summary`` (whose
records it formats, by duck typing) can use it without an import cycle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from harness.arms import Arm

__all__ = [
    "DASH",
    "arm_name",
    "claim",
    "duration_s",
    "effect",
    "estimate",
    "interval",
    "ms",
    "num",
    "pct",
    "points",
    "possessive",
    "ratio",
    "target_label",
    "threshold",
    "usd",
    "when",
]

Interval = tuple[float, float]


class Valued(Protocol):
    """What :func:`effect` reads: ``summary.Estimate`` and ``summary.Effect`` (which adds
    ``significant``) fit."""

    @property
    def value(self) -> float | None: ...

    @property
    def ci95(self) -> Interval | None: ...


class ClaimLike(Valued, Protocol):
    """What :func:`claim` reads (``summary.Claim``)."""

    @property
    def unit(self) -> str: ...


DASH = "—"


def arm_name(arm: str) -> str:
    """Plain name of an arm id: ``responses_chained`` → "Responses (chained)"."""
    return Arm.of(arm).label


def target_label(name: str, is_emulator: bool) -> str:
    """``emulator — not OpenAI``, ``http://host/v1 (emulator — not OpenAI)``, ``openai``."""
    from harness import NOT_OPENAI_LABEL

    if not is_emulator:
        return name
    return NOT_OPENAI_LABEL if name == "emulator" else f"{name} ({NOT_OPENAI_LABEL})"


def possessive(name: str) -> str:
    """``Responses's`` reads wrong: ``Chat Completions'``, ``Responses'``, ``chat's``."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _fixed(x: float, digits: int, *, sign: bool = False) -> str:
    """``x`` with ``digits`` decimals and thousands separators; a zero has no sign."""
    text = f"{x:{'+' if sign else ''},.{digits}f}"
    if not text.lstrip("+-").strip("0.,"):  # -0.0001 → "0.0", not "-0.0"
        return text.lstrip("+-")
    return text


def ms(x: float | None) -> str:
    """Milliseconds: ``41.9 ms`` below 100, ``1,234 ms`` from 100 (as rounded) up."""
    if x is None or not _finite(x):
        return DASH
    return f"{_fixed(x, 1)} ms" if abs(round(x, 1)) < 100 else f"{_fixed(x, 0)} ms"


def num(x: float | None, digits: int = 2) -> str:
    """A plain number: ``1,234.50``."""
    if x is None or not _finite(x):
        return DASH
    return _fixed(x, digits)


def ratio(x: float | None) -> str:
    """A ratio a/b: ``0.98×``."""
    return DASH if x is None or not _finite(x) else f"{_fixed(x, 2)}×"


def pct(x: float | None, digits: int = 0, sign: bool = False) -> str:
    """A fraction as a percentage: 0.25 → ``25 %``."""
    if x is None or not _finite(x):
        return DASH
    return f"{_fixed(x * 100, digits, sign=sign)} %"


def usd(x: float | None) -> str:
    """Dollars with enough digits for a fraction of a cent: ``$1,234``, ``$12.50``, ``$0.0123``,
    ``$0.00004`` (two significant digits below a tenth of a cent, never ``4e-05``)."""
    if x is None or not _finite(x):
        return DASH
    sign, x = ("-", -x) if x < 0 else ("", x)
    if x == 0:
        return "$0"
    if round(x, 2) >= 100:
        text = _fixed(x, 0)
    elif round(x, 4) >= 1:
        text = _fixed(x, 2)
    elif round(x, 4) >= 0.001:
        text = _fixed(x, 4)
    else:
        digits = 1 - math.floor(math.log10(x))  # two significant digits
        text = f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return f"{sign}${text}"


def points(x: float | None) -> str:
    """A difference of two fractions in percentage points: 0.365 → ``+36.5 pts``."""
    return DASH if x is None or not _finite(x) else _pts(x * 100)


def _pts(x: float) -> str:
    return f"{_fixed(x, 1, sign=True)} pts"


def threshold(x: float | None) -> str:
    """A configured threshold as written in the gates file (1.5, 0.05, 10)."""
    if x is None or not _finite(x):
        return DASH
    text = f"{x:g}"
    return "0" if text == "-0" else text


# kind → (the value with its unit, an interval bound without unit, the unit after the interval)
_KINDS: dict[str, tuple[Callable[[float], str], Callable[[float], str], str]] = {
    "ratio": (ratio, lambda v: _fixed(v, 2), ""),
    "points": (points, lambda v: _fixed(v * 100, 1), ""),
    "pts": (_pts, lambda v: _fixed(v, 1), ""),  # already in points (claims)
    "pct": (lambda v: pct(v, 1, sign=True), lambda v: _fixed(v * 100, 1), " %"),
    "share": (lambda v: pct(v, 1), lambda v: _fixed(v * 100, 1), " %"),
    "ms": (ms, lambda v: ms(v).removesuffix(" ms"), " ms"),
    "num": (num, num, ""),
    "num1": (lambda v: num(v, 1), lambda v: num(v, 1), ""),
    "usd": (usd, usd, ""),
}


def interval(ci: Interval | None, kind: str = "num") -> str:
    """A 95 % interval in the unit of ``kind`` (ratio, points, pct, share, ms, num, num1, usd):
    ``0.70–1.17``, ``40.1–44.0 ms``; ``-13.3 % to -1.7 %`` when a bound prints negative
    ("-13.3–-1.7" reads badly); an unbounded end (a ratio against zero) is ``∞``."""
    if ci is None or math.isnan(ci[0]) or math.isnan(ci[1]):
        return DASH
    _, bound, unit = _KINDS[kind]

    def end(x: float) -> str:
        return bound(x) if math.isfinite(x) else ("∞" if x > 0 else "-∞")

    lo, hi = end(ci[0]), end(ci[1])
    if lo.startswith("-") or hi.startswith("-"):
        return f"{lo}{unit} to {hi}{unit}"
    return f"{lo}–{hi}{unit}"


def estimate(
    value: float | None, ci95: Interval | None, kind: str = "ratio", *, significant: bool = False
) -> str:
    """A value with its interval: ``0.98× (0.70–1.17)``; `` *`` marks a significant effect.

    ``kind``: ratio, points (a difference of fractions), pct (a relative change), share (a
    fraction), ms, num, usd.
    """
    if value is None or not _finite(value):
        return DASH
    text = _KINDS[kind][0](value)
    if ci95 is not None and not (math.isnan(ci95[0]) or math.isnan(ci95[1])):
        text += f" ({interval(ci95, kind)})"
    if significant:
        text += " *"
    return text


def effect(e: Valued | None, kind: str = "ratio") -> str:
    """An ``Effect`` or ``Estimate`` as :func:`estimate` spells it (the one spelling of an effect
    in the terminal, Markdown, HTML, JUnit and gate text)."""
    if e is None:
        return DASH
    text = estimate(e.value, e.ci95, kind, significant=bool(getattr(e, "significant", False)))
    if getattr(e, "decision", None) == "too_few_samples" and text != DASH:
        text += f" (too few samples, n = {getattr(e, 'n_pairs', '?')})"
    return text


_CLAIM_KINDS = {"ratio": "ratio", "relative": "pct", "points": "pts"}


def claim(c: ClaimLike) -> str:
    """A claim's measured value: ``2.10× (1.90–2.30)``, ``+35.2 % (20.1–50.3 %)``, ``+12.3 pts
    (5.0–20.0)`` (a claim's points are already ×100)."""
    return estimate(c.value, c.ci95, _CLAIM_KINDS[c.unit])


def when(ts: float | None) -> str:
    """A unix time as ``2026-11-26 13:35:52 UTC``."""
    if ts is None:
        return DASH
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_s(seconds: float | None) -> str:
    """A wall time: ``12.3 s``, ``4 min 5 s``, ``1 h 2 min`` (59.96 s is ``1 min 0 s``)."""
    if seconds is None or not _finite(seconds):
        return DASH
    if round(seconds, 1) < 60:
        return f"{_fixed(seconds, 1)} s"
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes} min {sec} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
