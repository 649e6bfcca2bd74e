"""Reports: ``report.html`` (one offline file), ``summary.md`` and ``junit.xml`` from a run.

Public API::

    render_report(run_dir, out_dir=None) -> ReportPaths   # reports/<run-id>/ by default
    render_compare(run_a, run_b, out_dir=None) -> Path    # compare.html (+ compare.md)
    harness.report.junit.append_cases(path, suite_name, cases: list[JUnitCase])

Rendering reads the run directory only; it never sends a request. The renderers (and
matplotlib) load on first use of their names, so importing :mod:`harness.report.junit` stays
cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import lazy_exports
from harness.report.junit import JUnitCase, append_cases

__all__ = ["JUnitCase", "ReportPaths", "append_cases", "render_compare", "render_report"]

if TYPE_CHECKING:
    from harness.report.compare import render_compare
    from harness.report.render import ReportPaths, render_report

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ReportPaths": "harness.report.render",
        "render_compare": "harness.report.compare",
        "render_report": "harness.report.render",
    },
)
