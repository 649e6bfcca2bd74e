"""`harness run`'s terminal output when it is not a terminal (CI logs, pipes)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from harness.cli.run import ProgressBar, finish_run
from harness.records import RunMeta
from harness.runner.execute import RunResult


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=80), out


def test_no_progress_bar_when_output_is_not_a_terminal() -> None:
    console, out = _console()
    bar = ProgressBar(console)
    bar.start("emulator", 3)
    for _ in range(3):
        bar.advance(0)
    bar.stop()
    assert out.getvalue() == "", "its last frame landed after the end-of-run table"


def test_the_resume_hint_is_one_line_that_can_be_pasted(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "20261207-203703-a-scenario-with-a-rather-long-name-9976"
    run_dir.mkdir(parents=True)
    meta = RunMeta.model_construct(skipped={})
    console, out = _console()
    assert finish_run(RunResult(run_dir, meta, 0, 0, interrupted=True), console) == 130
    lines = out.getvalue().splitlines()
    assert f"observations: {run_dir / 'observations.jsonl'}" in lines
    assert (
        lines[-1]
        == f"interrupted after 0 request(s) — continue with: harness run --resume {run_dir}"
    )
