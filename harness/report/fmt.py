"""Number formatting shared by the HTML, Markdown and JUnit outputs (one spelling everywhere).

Every function takes ``None`` (a value that cannot exist, e.g. no TTFT without streaming) and
returns an em dash for it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from harness.arms import Arm
from harness.summary import Effect, Estimate, Interval

DASH = "—"


def arm_name(arm: str) -> str:
    """Plain name of an arm id: ``responses_chained`` → "Responses (chained)"."""
    return Arm.of(arm).label


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def ms(x: float | None) -> str:
    """Milliseconds: ``41.9 ms`` below 100, ``1,234 ms`` above."""
    if x is None or not _finite(x):
        return DASH
    return f"{x:.1f} ms" if abs(x) < 100 else f"{x:,.0f} ms"


def num(x: float | None, digits: int = 2) -> str:
    if x is None or not _finite(x):
        return DASH
    return f"{x:,.{digits}f}"


def ratio(x: float | None) -> str:
    """A ratio a/b: ``0.98×``."""
    return DASH if x is None or not _finite(x) else f"{x:.2f}×"


def pct(x: float | None, digits: int = 0, sign: bool = False) -> str:
    """A fraction as a percentage: 0.25 → ``25 %``."""
    if x is None or not _finite(x):
        return DASH
    return f"{x * 100:{'+' if sign else ''}.{digits}f} %"


def usd(x: float | None) -> str:
    """Dollars with enough digits for a fraction of a cent."""
    if x is None or not _finite(x):
        return DASH
    if x == 0:
        return "$0"
    if abs(x) >= 100:
        return f"${x:,.0f}"
    if abs(x) >= 1:
        return f"${x:,.2f}"
    return f"${x:.2g}" if abs(x) < 0.001 else f"${x:.4f}"


def interval(ci: Interval | None, kind: str = "num") -> str:
    """A 95 % interval in the unit of ``kind`` (num, ratio, pct, ms, usd): ``0.70–1.17``."""
    if ci is None:
        return DASH
    if ci[0] < 0 or ci[1] < 0:  # "-13.3–-1.7" reads badly
        f = {
            "ms": ms,
            "pct": pct,
            "points": lambda v: f"{v * 100:.1f}",
            "num": num,
            "num1": lambda v: f"{v:.1f}",
            "ratio": lambda v: f"{v:.2f}",
            "usd": usd,
        }[kind]
        return f"{f(ci[0])} to {f(ci[1])}"
    if kind == "ms":
        return f"{ms(ci[0]).removesuffix(' ms')}–{ms(ci[1])}"
    if kind == "pct":
        return f"{pct(ci[0]).removesuffix(' %')}–{pct(ci[1])}"
    if kind == "points":
        return f"{ci[0] * 100:.1f}–{ci[1] * 100:.1f}"
    if kind == "num1":
        return f"{ci[0]:.1f}–{ci[1]:.1f}"
    f = {"num": num, "ratio": lambda v: f"{v:.2f}", "usd": usd}[kind]
    return f"{f(ci[0])}–{f(ci[1])}"


def points(x: float | None) -> str:
    """A difference of two fractions in percentage points: 0.365 → ``+36.5 pts``."""
    if x is None or not _finite(x):
        return DASH
    return f"{x * 100:+.1f} pts"


def effect(e: Effect | Estimate | None, kind: str = "ratio") -> str:
    """A value with its interval: ``0.98× (0.70–1.17)``; ``*`` marks a significant effect.

    ``kind``: ratio, points (a difference of fractions), pct (a relative change), num, usd.
    """
    if e is None or e.value is None:
        return DASH
    f = {
        "ratio": ratio,
        "pct": lambda v: pct(v, 1, sign=True),
        "points": points,
        "num": num,
        "usd": usd,
    }[kind]
    text = f(e.value)
    if e.ci95 is not None:
        text += f" ({interval(e.ci95, kind)})"
    if isinstance(e, Effect) and e.significant:
        text += " *"
    return text


def when(ts: float | None) -> str:
    """A unix time as ``2026-11-26 13:35:52 UTC``."""
    if ts is None:
        return DASH
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration_s(seconds: float | None) -> str:
    if seconds is None or not _finite(seconds):
        return DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes} min {sec} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
