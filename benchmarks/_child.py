"""Run a benchmark file as a child process (a clean interpreter, its own peak RSS)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_child(script: str, args: list[str]) -> dict[str, Any]:
    """Run ``script`` with ``args``; its last stdout line is a JSON object of its figures."""
    done = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures
