"""Reports: ``report.html`` (one offline file), ``summary.md`` and ``junit.xml`` from a run.

Public API::

    render_report(run_dir, out_dir=None) -> ReportPaths   # reports/<run-id>/ by default
    render_compare(run_a, run_b, out_dir=None) -> Path    # compare.html (+ compare.md)
    harness.report.junit.append_cases(path, suite_name, cases: list[JUnitCase])

Rendering reads the run directory only; it never sends a request. The heavy imports
(matplotlib) happen on the first render, so importing :mod:`harness.report.junit` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.report.junit import JUnitCase, append_cases

if TYPE_CHECKING:
    from harness.report.render import ReportPaths


def render_report(
    run_dir: Path,
    out_dir: Path | None = None,
    *,
    divergent: int = 10,
    slowest: int = 5,
    max_rows: int = 300,
) -> ReportPaths:
    """Write ``report.html``, ``summary.md`` and ``junit.xml`` for a run directory.

    ``out_dir`` defaults to ``reports/<run-id>/``. Analyses the run first when it has no
    ``summary.json`` (and saves it). See :func:`harness.report.render.render_report`.
    """
    from harness.report.render import render_report as _render

    return _render(run_dir, out_dir, divergent=divergent, slowest=slowest, max_rows=max_rows)


def render_compare(run_a: Path, run_b: Path, out_dir: Path | None = None) -> Path:
    """Compare run A (candidate) with run B (baseline); returns the path of ``compare.html``.

    ``out_dir`` defaults to ``reports/compare-<a>-vs-<b>/``.
    """
    from harness.report.compare import render_compare as _compare

    return _compare(run_a, run_b, out_dir)


__all__ = ["JUnitCase", "ReportPaths", "append_cases", "render_compare", "render_report"]


def __getattr__(name: str) -> object:
    if name == "ReportPaths":
        from harness.report.render import ReportPaths

        return ReportPaths
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
