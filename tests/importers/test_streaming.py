"""The import streams its source: memory follows the distinct requests, not the line count."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from harness.importers.batch import read_batch
from harness.importers.build import ImportOptions, build_scenario


def _peak_bytes(path: Path) -> int:
    tracemalloc.start()
    try:
        result = build_scenario(
            read_batch(path), ImportOptions(name="s"), source=str(path), fmt="batch"
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.report.prompts == 20
    return peak


def _log(path: Path, lines: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            body = {
                "model": "gpt-4.1-mini",
                "messages": [
                    {"role": "system", "content": "Be brief. " * 200},
                    {"role": "user", "content": f"Question {i % 20}"},
                ],
            }
            fh.write(json.dumps(body) + "\n")
    return path


def test_ten_times_the_lines_do_not_need_more_memory(tmp_path: Path) -> None:
    small = _peak_bytes(_log(tmp_path / "small.jsonl", 500))
    large = _peak_bytes(_log(tmp_path / "large.jsonl", 5_000))
    # a reader holding the lines would need ~10x (each line is ~2 kB)
    assert large <= 1.5 * small, (small, large)
