"""A run's API latencies as pytest-benchmark JSON, for ``pytest-benchmark compare``.

Each scenario × arm × latency (wire-clock TTFT and total by default) becomes one "benchmark"
whose rounds are that arm's measured, successful requests, in seconds, so the usual tooling
works on API latency::

    harness export-benchmark runs/<run-id> --storage .benchmarks
    harness export-benchmark runs/<other-run-id> --storage .benchmarks
    pytest-benchmark --storage .benchmarks compare 0001 0002 --group-by=group

Statistics are pytest-benchmark's own (``pytest_benchmark.stats.Stats``), so min/median/IQR and
outlier counts mean what they mean there. Names: group ``<scenario>: <latency>``, name
``<latency>[<scenario>-<arm>]``. Needs the ``pytest-benchmark`` package (the ``test`` extra).
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

#: Latency columns exported by default (wire clock; ``sdk_*`` add the client's parsing time).
DEFAULT_METRICS = ("ttft_ms", "total_ms")
EXPORTABLE = ("ttft_ms", "ttfb_ms", "total_ms", "sdk_ttft_ms", "sdk_ttfb_ms", "sdk_total_ms")


def _stats_class() -> Any:
    try:
        from pytest_benchmark.stats import Stats
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise HarnessError(
            "exporting to pytest-benchmark needs it installed — pip install "
            "pytest-benchmark (or the harness 'test' extra)"
        ) from exc
    return Stats


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-benchmark")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def machine_id() -> str:
    """pytest-benchmark's storage subdirectory name for this interpreter."""
    return (
        f"{platform.system()}-{platform.python_implementation()}-"
        f"{'.'.join(platform.python_version_tuple()[:2])}-{platform.architecture()[0]}"
    )


def benchmark_json(
    run_dir: Path, *, metrics: Sequence[str] = DEFAULT_METRICS, include_data: bool = True
) -> dict[str, Any]:
    """The pytest-benchmark JSON document for ``run_dir`` (warm-up and failed requests out)."""
    import numpy as np  # here, not at the top: the CLI reads EXPORTABLE while building its parser

    from harness.analysis.analyze import load_table
    from harness.rundir import OBSERVATIONS_FILE, read_meta

    bad = [m for m in metrics if m not in EXPORTABLE]
    if bad:
        raise HarnessError(f"cannot export {', '.join(bad)} — choose from {', '.join(EXPORTABLE)}")
    meta = read_meta(run_dir)
    table = load_table(run_dir / OBSERVATIONS_FILE).latest_per_key()
    stats_cls = _stats_class()
    benchmarks: list[dict[str, Any]] = []
    keep = table.ok & ~table.warmup
    groups: dict[tuple[str, str], list[int]] = {}
    for i in np.flatnonzero(keep).tolist():
        groups.setdefault((table.scenario[i], table.arm[i]), []).append(i)
    for (scenario, arm), rows in sorted(groups.items()):
        idx = np.array(rows, dtype=np.int64)
        for metric in metrics:
            values = getattr(table, metric)[idx]
            seconds = (values[np.isfinite(values)] / 1000.0).tolist()
            if not seconds:
                continue  # e.g. TTFT of a non-streaming arm: cannot exist
            stats = stats_cls()
            for s in seconds:
                stats.update(s)
            body = stats.as_dict()
            body["iterations"] = 1
            if include_data:
                body["data"] = seconds
            benchmarks.append(
                {
                    "group": f"{scenario}: {metric}",
                    "name": f"{metric}[{scenario}-{arm}]",
                    "fullname": f"{scenario}::{arm}::{metric}",
                    "params": {"scenario": scenario, "arm": arm, "metric": metric},
                    "param": f"{scenario}-{arm}",
                    "extra_info": {
                        "run_id": meta.run_id,
                        "target": meta.target_label,
                        "emulator_profile": meta.emulator_profile,
                        "unit": "s",
                        "clock": "sdk" if metric.startswith("sdk_") else "wire",
                        "source": "shadow-harness",
                    },
                    "options": {
                        "disable_gc": False,
                        "timer": "time.perf_counter_ns",
                        "min_rounds": 1,
                        "max_time": 0.0,
                        "min_time": 0.0,
                        "warmup": False,
                    },
                    "stats": body,
                }
            )
    if not benchmarks:
        raise HarnessError(f"{run_dir}: no successful measured request to export")
    return {
        "machine_info": {
            "node": platform.node(),
            "processor": platform.processor(),
            "machine": platform.machine(),
            "python_version": platform.python_version(),
            "python_implementation": platform.python_implementation(),
            "release": platform.release(),
            "system": platform.system(),
            "harness_machine": meta.machine,
        },
        "commit_info": {
            "id": meta.run_id,
            "time": datetime.fromtimestamp(meta.created_at, tz=UTC).isoformat(),
            "dirty": False,
            "project": "shadow-harness",
            "branch": "(run)",
        },
        "benchmarks": benchmarks,
        "datetime": datetime.fromtimestamp(meta.created_at, tz=UTC).isoformat(),
        "version": _version(),
    }


def _next_number(directory: Path) -> str:
    numbers = [int(p.name[:4]) for p in directory.glob("[0-9][0-9][0-9][0-9]_*.json")]
    return f"{max(numbers, default=0) + 1:04d}"


def export_benchmark(
    run_dir: Path,
    *,
    out: Path | None = None,
    storage: Path | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Path:
    """Write the JSON to ``out``, or as the next numbered run in a pytest-benchmark storage
    directory (``storage/<machine-id>/NNNN_<run-id>.json``); return the path."""
    import json

    if (out is None) == (storage is None):
        raise HarnessError("give exactly one of an output file or a storage directory")
    doc = benchmark_json(run_dir, metrics=metrics)
    if out is None:
        assert storage is not None
        directory = storage / machine_id()
        directory.mkdir(parents=True, exist_ok=True)
        run_id = str(doc["commit_info"]["id"])
        out = directory / f"{_next_number(directory)}_{run_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return out
