"""``harness import batch`` speed and memory on 10,000 and 100,000 lines (issue 18).

A Batch API input file is generated per size from the same 1,000 distinct request bodies (a
shared 2 kB system prompt, a tool on a third of them, json_schema on a fifth, stream on half,
a 20 kB conversation every 50th), cycled, so the 100k file holds the 10k file's prompts ten
times over: distinct prompts must be kept, duplicates must not grow memory. Each size is
imported by ``harness import batch`` in its own process (``python benchmarks/bench_import.py
SOURCE OUT``), which reports its wall time and peak RSS (``ru_maxrss`` of itself).

Goals, measured in the same run: peak RSS of the 100k import ≤ 1.5× that of the 10k import;
the import costs ≤ ``MAX_RATIO``× plain ``json.loads`` of every line of the same file (the
baseline, timed in a child process too, rounds interleaved). Lines per second of both are
reported. ``harness import otel`` is measured the same way on OTLP JSON Lines (one
ExportTraceServiceRequest per line, a semantic-conventions span per request, the same bodies):
lines/s, and the same peak-RSS goal. Run: ``python -m pytest benchmarks/bench_import.py
--benchmark-only -s``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _child import run_child  # benchmarks/ is on sys.path (pytest, or run as a script)

SIZES = (10_000, 100_000)
DISTINCT = 1_000
ROUNDS = 2
MAX_RSS_RATIO = 1.5
MAX_RATIO = 15.0
MODEL = "gpt-4.1-mini"
SYSTEM = "You are the support assistant of Acme. " + "Answer briefly and cite the help page. " * 50
TOOL = {
    "type": "function",
    "function": {
        "name": "order_status",
        "description": "Look up an order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "ticket",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"category": {"type": "string"}},
            "required": ["category"],
            "additionalProperties": False,
        },
    },
}


def body(i: int) -> dict[str, Any]:
    """The i-th distinct request body."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    if i % 50 == 0:  # a long fixed history: the bodies are not all small
        for turn in range(20):
            messages.append({"role": "user", "content": f"Question {i}.{turn}: " + "x " * 250})
            messages.append({"role": "assistant", "content": f"Answer {turn}: " + "y " * 250})
    messages.append({"role": "user", "content": f"Where is my order number {i}? " * 3})
    out: dict[str, Any] = {"model": MODEL, "messages": messages, "max_tokens": 200}
    if i % 3 == 0:
        out["tools"] = [TOOL]
    elif i % 5 == 0:
        out["response_format"] = SCHEMA
    if i % 2 == 0:
        out["stream"] = True
    return out


def write_source(path: Path, lines: int) -> Path:
    bodies = [json.dumps(body(i)) for i in range(DISTINCT)]
    with path.open("w", encoding="utf-8") as fh:
        for n in range(lines):
            fh.write(
                f'{{"custom_id": "req-{n}", "method": "POST", "url": "/v1/chat/completions", '
                f'"body": {bodies[n % DISTINCT]}}}\n'
            )
    return path


def _kv(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, str):
            return {"stringValue": v}
        return {"intValue": str(v)} if isinstance(v, int) else {"doubleValue": v}

    return [{"key": k, "value": value(v)} for k, v in attrs.items()]


def otel_line(i: int, n: int) -> str:
    """The i-th distinct body as line n of the collector's file exporter: one
    ExportTraceServiceRequest holding a semantic-conventions (>= 1.37) chat span."""
    request = body(i)
    system, *rest = request["messages"]
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": request["model"],
        "gen_ai.request.max_tokens": request["max_tokens"],
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": system["content"]}]),
        "gen_ai.input.messages": json.dumps(
            [
                {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
                for m in rest
            ]
        ),
    }
    if "tools" in request:
        fn = request["tools"][0]["function"]
        attrs["gen_ai.tool.definitions"] = json.dumps(
            [{"type": "function", **{k: fn[k] for k in ("name", "description", "parameters")}}]
        )
    span = {"traceId": f"{n:032x}", "spanId": f"{n + 1:016x}", "name": "chat", "kind": 3}
    span["attributes"] = _kv(attrs)
    scope = {"scope": {"name": "bench"}, "spans": [span]}
    return json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [scope]}]})


def write_otel_source(path: Path, lines: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for n in range(lines):
            fh.write(otel_line(n % DISTINCT, n) + "\n")
    return path


def _child(args: list[str]) -> dict[str, Any]:
    return run_child(__file__, args)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("bench-import")
    return {n: write_source(root / f"batch-{n}.jsonl", n) for n in SIZES}


def test_import_speed_and_bounded_memory(
    benchmark: Any, sources: dict[int, Path], tmp_path: Path
) -> None:
    parse: dict[int, list[dict[str, Any]]] = {n: [] for n in SIZES}
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in SIZES}

    def one_round() -> None:
        for n in SIZES:  # interleaved: noise hits the baseline and the import alike
            parse[n].append(_child(["--parse", str(sources[n])]))
            runs[n].append(_child([str(sources[n]), str(tmp_path / f"s-{n}.yaml")]))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    info: dict[str, Any] = {}
    for n in SIZES:
        best = min(r["seconds"] for r in runs[n])
        base = min(r["seconds"] for r in parse[n])
        info[f"import_{n}_s"] = best
        info[f"import_{n}_lines_per_s"] = n / best
        info[f"parse_{n}_lines_per_s"] = n / base
        info[f"ratio_{n}"] = best / base
        info[f"import_{n}_peak_rss_mb"] = max(r["maxrss_kb"] for r in runs[n]) / 1024
        info[f"parse_{n}_peak_rss_mb"] = max(r["maxrss_kb"] for r in parse[n]) / 1024
        assert {r["prompts"] for r in runs[n]} == {DISTINCT}
    small, big = SIZES
    rss_ratio = info[f"import_{big}_peak_rss_mb"] / info[f"import_{small}_peak_rss_mb"]
    info["rss_ratio"] = rss_ratio
    benchmark.extra_info.update(info)
    print()
    for n in SIZES:
        print(
            f"{n:>7,} lines: import {info[f'import_{n}_lines_per_s']:,.0f} lines/s "
            f"({info[f'import_{n}_s']:.2f} s, peak RSS {info[f'import_{n}_peak_rss_mb']:.0f} MB); "
            f"json.loads {info[f'parse_{n}_lines_per_s']:,.0f} lines/s "
            f"(peak RSS {info[f'parse_{n}_peak_rss_mb']:.0f} MB); "
            f"ratio {info[f'ratio_{n}']:.1f}×"
            + (
                f" (goal ≤ {MAX_RATIO}×)"
                if n == SIZES[-1]
                else " (start-up and writing the 1,000 prompts dominate)"
            )
        )
    print(f"peak RSS {big:,} / {small:,} lines: {rss_ratio:.2f}× (goal ≤ {MAX_RSS_RATIO}×)")
    assert rss_ratio <= MAX_RSS_RATIO
    assert info[f"ratio_{big}"] <= MAX_RATIO


@pytest.fixture(scope="module")
def otel_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("bench-import-otel")
    return {n: write_otel_source(root / f"otel-{n}.jsonl", n) for n in SIZES}


def test_otel_import_lines_per_second_and_bounded_memory(
    benchmark: Any, otel_sources: dict[int, Path], tmp_path: Path
) -> None:
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in SIZES}

    def one_round() -> None:
        for n in SIZES:
            runs[n].append(_child(["--otel", str(otel_sources[n]), str(tmp_path / f"o-{n}.yaml")]))

    benchmark.pedantic(one_round, rounds=1, iterations=1)
    info: dict[str, Any] = {}
    print()
    for n in SIZES:
        best = min(r["seconds"] for r in runs[n])
        info[f"otel_{n}_lines_per_s"] = n / best
        info[f"otel_{n}_peak_rss_mb"] = max(r["maxrss_kb"] for r in runs[n]) / 1024
        assert {r["prompts"] for r in runs[n]} == {DISTINCT}
        print(
            f"{n:>7,} OTLP lines: import otel {info[f'otel_{n}_lines_per_s']:,.0f} lines/s "
            f"({best:.2f} s, peak RSS {info[f'otel_{n}_peak_rss_mb']:.0f} MB)"
        )
    small, big = SIZES
    rss_ratio = info[f"otel_{big}_peak_rss_mb"] / info[f"otel_{small}_peak_rss_mb"]
    info["otel_rss_ratio"] = rss_ratio
    benchmark.extra_info.update(info)
    print(f"peak RSS {big:,} / {small:,} OTLP lines: {rss_ratio:.2f}× (goal ≤ {MAX_RSS_RATIO}×)")
    assert rss_ratio <= MAX_RSS_RATIO


def _parse_only(path: Path) -> int:
    """The baseline: every line through ``json.loads``, nothing kept."""
    count = 0
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            json.loads(line)
            count += 1
    return count


def _main(argv: list[str]) -> int:
    fmt = "batch"
    if argv[0] == "--otel":
        fmt, argv = "otel", argv[1:]
    start = time.perf_counter()
    if argv[0] == "--parse":
        _parse_only(Path(argv[1]))
        prompts = 0
    else:
        from harness.cli.app import main

        # the real command, report and validation of the written scenario included
        status = main(["import", fmt, argv[0], "--out", argv[1]])
        if status != 0:
            return status
    seconds = time.perf_counter() - start
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if argv[0] != "--parse":
        import yaml

        prompts = len(yaml.safe_load(Path(argv[1]).read_text(encoding="utf-8"))["prompts"])
    print(json.dumps({"seconds": seconds, "maxrss_kb": maxrss, "prompts": prompts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
