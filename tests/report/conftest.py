"""The real emulator run the report tests share (the HTML checks and the browser check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis.analyze import analyze_run, write_summary
from harness.runner.execute import RunOptions, run
from harness.transport.client import RetryPolicy

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
PROFILE = """
extends: guide-claims
name: report-test
divergence: 0.25
both:
  faults:
    server_error: 0.06
    stream_cut: 0.04
    retry_after_ms: 5
"""


def emulator_run(out: Path) -> Path:
    """A small real run on the built-in emulator: quickstart + function_calling."""
    profile = out / "profile.yaml"
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text(PROFILE, encoding="utf-8")
    result = run(
        [SCENARIOS / "quickstart.yaml", SCENARIOS / "function_calling.yaml"],
        RunOptions(
            out=out,
            repeats=3,
            seed=5,
            progress=False,
            emulator_profile=str(profile),
            emulator_time_scale=0.02,
            retry=RetryPolicy(max_attempts=3, base_s=0.001),
        ),
    )
    write_summary(result.run_dir, analyze_run(result.run_dir, resamples=400))
    return result.run_dir


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run for every report test that only reads it (a test that alters it copies it)."""
    return emulator_run(tmp_path_factory.mktemp("report-run"))
