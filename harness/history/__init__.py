"""Run history: every run's observations and summary, kept as per-run Parquet files that DuckDB
queries as one table (trends across runs, baselines of several past runs). See docs/history.md.

:func:`save_summary` is the one place a finished analysis is kept: ``summary.json`` in the run
directory, then the run's record in the history (``harness run`` and ``harness analyze`` both
call it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness.errors import HistoryError

if TYPE_CHECKING:
    from harness.analysis.analyze import LoadedRun
    from harness.summary import Summary

__all__ = [
    "AUTO",
    "HistoryOption",
    "option_history",
    "record_or_warn",
    "resolve_history",
    "save_summary",
]

#: the default location: ``$HARNESS_HISTORY``, else ``history/`` in the runs directory
AUTO: Literal["auto"] = "auto"
#: a history directory, :data:`AUTO`, or None (history off: ``--no-history``)
HistoryOption = Path | None | Literal["auto"]


def resolve_history(option: str | None, runs_dir: Path, *, off: bool = False) -> Path | None:
    """The history directory for ``--history`` / ``--no-history`` (None when off)."""
    if off:
        return None
    from harness.history.store import history_location

    return history_location(runs_dir, option)


def option_history(option: str | None, *, off: bool = False) -> HistoryOption:
    """``--history`` / ``--no-history`` before the run directory is known: a directory, None
    (off), or :data:`AUTO` (``$HARNESS_HISTORY``, else beside the runs directory)."""
    if off:
        return None
    if option is None:
        return AUTO
    from harness.history.store import parse_location

    return parse_location(option)


def _root(history: HistoryOption, run_dir: Path) -> Path | None:
    if history == AUTO:
        return resolve_history(None, run_dir.parent)
    return history


def record_or_warn(history: HistoryOption, run: LoadedRun, summary: Summary) -> str | None:
    """Record ``run`` in the history; a failure comes back as a one-line warning, never an
    exception: history is an index of runs, and must never fail one."""
    try:
        root = _root(history, run.run_dir)
        if root is None:
            return None
        from harness.history.store import record_run

        record_run(root, run.meta, run.table, summary, run_dir=run.run_dir)
    except HistoryError as exc:
        return f"run not recorded in the history: {exc}"
    except ImportError as exc:
        return f"run not recorded in the history ({exc}) — pip install 'duckdb>=2.0.1'"
    return None


def save_summary(
    run: LoadedRun, summary: Summary, history: HistoryOption = AUTO
) -> tuple[Path, str | None]:
    """Write ``summary.json`` into the run directory, then record the run in the history;
    returns the summary's path and the history's warning, if any."""
    from harness.rundir import write_summary

    path = write_summary(run.run_dir, summary)
    return path, record_or_warn(history, run, summary)
