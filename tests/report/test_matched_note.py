"""Per-arm cost and cache figures (all requests) beside comparisons (matched requests): the
report says which is which, in HTML and Markdown."""

from __future__ import annotations

import html
from pathlib import Path

from harness.analysis.analyze import SyntheticProfile, synthetic_observations, write_synthetic_run
from harness.report import render_report
from harness.report.verdict import MATCHED_NOTE


def test_report_says_per_arm_figures_and_comparisons_cover_different_requests(
    tmp_path: Path,
) -> None:
    obs = synthetic_observations(
        SyntheticProfile(error_rate=0.1), arms=("chat", "responses"), repeats=5, run_id="m"
    )
    run_dir = write_synthetic_run(tmp_path / "run", obs)
    paths = render_report(run_dir, tmp_path / "report")
    page = html.unescape(paths.html.read_text(encoding="utf-8"))
    markdown = paths.markdown.read_text(encoding="utf-8")
    for text in (page, markdown):
        assert MATCHED_NOTE in text
    assert "over all requests of each arm" in page  # beside the per-arm cost table
    # in Markdown after the comparison table, before the claims
    assert markdown.index("| comparison (a/b) |") < markdown.index(MATCHED_NOTE)
