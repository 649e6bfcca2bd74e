"""The import streams its source: memory follows the distinct requests, not the line count."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from import_formats import event_span, semconv_span, traces

from harness.importers.batch import read_batch
from harness.importers.build import ImportOptions, build_scenario
from harness.importers.otel import read_otel


def _peak_bytes(path: Path, fmt: str = "batch") -> int:
    read = read_batch if fmt == "batch" else read_otel
    tracemalloc.start()
    try:
        result = build_scenario(read(path), ImportOptions(name="s"), source=str(path), fmt=fmt)
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


def _otlp_lines(path: Path, lines: int, dialect: str = "semconv") -> Path:
    """One ExportTraceServiceRequest per line, as the collector's file exporter writes; for
    the events dialect each span's log records come as an ExportLogsServiceRequest on the
    line after it."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            body = {
                "model": "gpt-4.1-mini",
                "messages": [
                    {"role": "system", "content": "Be brief. " * 200},
                    {"role": "user", "content": f"Question {i % 20}"},
                ],
            }
            if dialect == "semconv":
                fh.write(json.dumps(traces([semconv_span(i, body)])) + "\n")
                continue
            logs: list[dict[str, Any]] = []
            chat = event_span(2 * i + 1, body, logs)  # odd: its events are log records
            fh.write(json.dumps(traces([chat])) + "\n")
            fh.write(json.dumps({"resourceLogs": traces([], logs)["resourceLogs"]}) + "\n")
    return path


@pytest.mark.parametrize("dialect", ["semconv", "events"])
def test_otlp_json_lines_stream_too(tmp_path: Path, dialect: str) -> None:
    """Spans holding their messages are imported as read; spans whose messages are log
    records (which may come later) wait on disk, not in memory."""
    small = _peak_bytes(_otlp_lines(tmp_path / "small.jsonl", 500, dialect), "otel")
    large = _peak_bytes(_otlp_lines(tmp_path / "large.jsonl", 5_000, dialect), "otel")
    # reading the file whole (or holding its spans) would need ~10x (each line is ~3 kB)
    assert large <= 1.5 * small, (small, large)
