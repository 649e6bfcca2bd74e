"""The run history on disk: one Parquet file per run and table, which DuckDB reads as one table.

Layout (a directory, local or on shared storage; see docs/history.md)::

    history/
      history.json                     {"kind": "shadow-harness-history", "schema_version": 1}
      runs/<run-id>.parquet            one row: when, the target, the summary (JSON)
      metrics/<run-id>.parquet         the trend metrics of each scenario, with 95 % intervals
      observations/<run-id>.parquet    the measured observations (no reply text, no attempts)

Why files per run and not one ``history.duckdb``: DuckDB allows one writing process per database
file, so two runs finishing at once would fail or wait on each other, a crash mid-write could
damage every run's history, and shared storage (NFS, a CI cache) gives no lock DuckDB can rely
on. Each file here is written under a temporary name and renamed: writers never meet, recording a
run again replaces its files (idempotent by run id), a damaged file costs one run, and DuckDB
reads them all as one table at query time. The run directory stays the record; history is an
index one can delete and rebuild with ``harness analyze``.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import numpy as np

from harness import __version__
from harness.analysis.metrics import (
    LATENCIES,
    STATE_COLUMNS,
    STRING_COLUMNS,
    TOKENS,
    ObservationTable,
)
from harness.errors import HistoryError

if TYPE_CHECKING:
    import duckdb

    from harness.records import RunMeta
    from harness.summary import Summary

__all__ = [
    "ARM_METRICS",
    "COMPARISON_METRICS",
    "HISTORY_DIRNAME",
    "HISTORY_ENV",
    "HISTORY_KIND",
    "HISTORY_SCHEMA_VERSION",
    "MANIFEST",
    "METRIC_TYPES",
    "OBSERVATION_TYPES",
    "RUN_TYPES",
    "TABLES",
    "Recorded",
    "check_manifest",
    "history_location",
    "parse_location",
    "record_run",
    "summary_metrics",
    "table_files",
    "target_key",
]

#: 1: runs / metrics / observations Parquet files per run (this module's layout)
HISTORY_SCHEMA_VERSION = 1
HISTORY_KIND = "shadow-harness-history"
HISTORY_ENV = "HARNESS_HISTORY"
HISTORY_DIRNAME = "history"
MANIFEST = "history.json"
TABLES = ("runs", "metrics", "observations")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_REBUILD = "history is an index: delete the file and `harness analyze RUN_DIR` records a run again"

#: comparison metrics (``<a>_vs_<b>``): the trend name and the Comparison field it copies
COMPARISON_METRICS: dict[str, str] = {
    "ttft_ratio": "ttft_p50_ratio",
    "total_ratio": "total_p50_ratio",
    "cost_ratio": "cost_ratio",
    "cache_delta": "cache_hit_ratio_delta",
}
#: per-arm metrics
ARM_METRICS = ("cache_share", "error_rate", "ttft_p50_ms")

RUN_TYPES: dict[str, str] = {
    "schema_version": "INTEGER",
    "run_id": "VARCHAR",
    "started_at": "DOUBLE",
    "finished_at": "DOUBLE",
    "recorded_at": "DOUBLE",
    "target": "VARCHAR",
    "target_key": "VARCHAR",
    "emulator_profile": "VARCHAR",
    "is_emulator": "BOOLEAN",
    "harness_version": "VARCHAR",
    "run_dir": "VARCHAR",
    "observations": "BIGINT",
    "summary_json": "VARCHAR",
}
METRIC_TYPES: dict[str, str] = {
    "run_id": "VARCHAR",
    "scenario": "VARCHAR",
    "subject": "VARCHAR",
    "metric": "VARCHAR",
    "value": "DOUBLE",
    "ci_low": "DOUBLE",
    "ci_high": "DOUBLE",
    "n": "BIGINT",
    "decision": "VARCHAR",
}
#: every text column of the observation table but the reply text (the history keeps no replies)
_OBS_TEXT = tuple(c for c in STRING_COLUMNS if c != "output_text")
_OBS_INT = ("turn", "repeat", "order", *TOKENS, "nonce_tokens")
_OBS_BOOL = ("cold", "warmup", "ok", "has_usage", "saturated")
_OBS_FLOAT = (*LATENCIES, "similarity", "loop_lag_ms", *STATE_COLUMNS)
OBSERVATION_TYPES: dict[str, str] = {
    **dict.fromkeys(_OBS_TEXT, "VARCHAR"),
    **dict.fromkeys(_OBS_INT, "BIGINT"),
    **dict.fromkeys(_OBS_BOOL, "BOOLEAN"),
    **dict.fromkeys(_OBS_FLOAT, "DOUBLE"),
}


def parse_location(text: str) -> Path:
    """A ``--history`` value: a path, or a ``file://`` URL (mounted shared storage)."""
    if "://" in text:
        url = urlparse(text)
        if url.scheme != "file":
            raise HistoryError(
                f"--history {text}: {url.scheme}:// is not supported (DuckDB would need its "
                "httpfs extension) — mount the storage and give its path, e.g. /mnt/ci/history"
            )
        return Path(unquote(url.path))
    return Path(text).expanduser()


def history_location(runs_dir: Path, option: str | None = None) -> Path:
    """Where history lives: ``--history``, else ``$HARNESS_HISTORY``, else ``history/`` beside
    the runs directory (``runs/`` → ``history/``, as ``reports/``): ``runs/`` keeps holding
    only run directories, so ``runs/*`` globs and listings of runs stay true."""
    text = option if option is not None else os.environ.get(HISTORY_ENV) or None
    if text is None:
        return runs_dir.resolve().parent / HISTORY_DIRNAME
    return parse_location(text)


def target_key(target_label: str, emulator_profile: str | None) -> str:
    """What "the same target" means for a trend: the target, and the emulator's profile."""
    return target_label if emulator_profile is None else f"{target_label}, {emulator_profile}"


def table_files(root: Path, table: str) -> list[Path]:
    """The Parquet files of ``table``, sorted (temporary files are never matched)."""
    return sorted((root / table).glob("*.parquet"))


def check_manifest(root: Path, *, create: bool) -> None:
    """Check ``root/history.json`` (kind and schema version), writing it when ``create``.

    A history from a newer harness, or a file that is not a history manifest, is one
    :class:`HistoryError`; a missing one is created or, for a reader, means no history.
    """
    path = root / MANIFEST
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"{root}: cannot write the history there ({exc.strerror})") from None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if not create:
            raise HistoryError(
                f"{root}: no run history here ({MANIFEST} missing) — runs record it when they "
                "finish; point --history (or $HARNESS_HISTORY) at it"
            ) from None
        foreign = sorted(
            p.name
            for p in root.iterdir()
            # another writer creating the history at this moment leaves these kinds (its
            # manifest may land between the read above and this listing)
            if p.name not in TABLES
            and p.name != MANIFEST
            and not p.name.startswith(f".{MANIFEST}.")
        )
        if (root / MANIFEST).exists():  # another writer created it meanwhile: check theirs
            check_manifest(root, create=False)
            return
        if foreign:  # someone else's directory of that name: never write into it
            raise HistoryError(
                f"{root}: exists and is not a run history (no {MANIFEST}; holds "
                f"{', '.join(foreign[:3])}) — point --history (or $HARNESS_HISTORY) elsewhere"
            ) from None
        _write_manifest(root)
        return
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the history ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("kind") != HISTORY_KIND:
        raise HistoryError(
            f"{path}: not a shadow-harness history manifest (damaged?) — {_REBUILD}, or "
            "point --history at another directory"
        )
    version = data.get("schema_version")
    if not isinstance(version, int) or version > HISTORY_SCHEMA_VERSION:
        raise HistoryError(
            f"{path}: history schema_version {version!r} was written by a newer harness (this "
            f"one reads {HISTORY_SCHEMA_VERSION}) — upgrade shadow-harness, or point --history "
            "at another directory"
        )


def _write_manifest(root: Path) -> None:
    try:
        for table in ("", *TABLES):
            (root / table).mkdir(parents=True, exist_ok=True)
        data = {
            "kind": HISTORY_KIND,
            "schema_version": HISTORY_SCHEMA_VERSION,
            "created_by": f"shadow-harness {__version__}",
        }
        _atomic_bytes(root / MANIFEST, (json.dumps(data, indent=2) + "\n").encode())
    except OSError as exc:
        raise HistoryError(f"{root}: cannot write the history there ({exc.strerror})") from None


def _tmp_name(path: Path) -> Path:
    # unique per process and thread: two writers of one run id never share a temporary file
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = _tmp_name(path)
    tmp.write_bytes(data)
    _fsync(tmp)
    os.replace(tmp, path)


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _write_parquet(
    con: duckdb.DuckDBPyConnection,
    columns: Mapping[str, Any],
    types: Mapping[str, str],
    path: Path,
) -> None:
    """Write ``columns`` (numpy arrays, typed as ``types``) to ``path``, atomically."""
    con.register("_history_rows", dict(columns))
    select = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in types.items())
    tmp = _tmp_name(path)
    try:
        con.execute(
            f"COPY (SELECT {select} FROM _history_rows) TO {_sql_path(tmp)} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        con.unregister("_history_rows")
        tmp.unlink(missing_ok=True)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def summary_metrics(summary: Summary) -> dict[str, list[Any]]:
    """The trend metrics of every scenario of ``summary``, as columns of :data:`METRIC_TYPES`.

    Comparisons (not A/A replicates): TTFT, total latency and cost ratios and the cache-hit
    delta; a comparison whose cache figures are contaminated gives no cost or cache row. Arms:
    cache share (Σ cached / Σ input tokens), error rate (Wilson interval) and TTFT p50 ms.
    """
    from harness.gates.evaluate import wilson_interval

    cols: dict[str, list[Any]] = {k: [] for k in METRIC_TYPES}

    def add(
        scenario: str,
        subject: str,
        metric: str,
        value: float | None,
        ci: tuple[float, float] | None,
        n: int | None,
        decision: str | None = None,
    ) -> None:
        if value is None:
            return
        low, high = ci if ci else (None, None)
        row = (summary.run_id, scenario, subject, metric, _finite(value))
        row_ci = (_finite(low), _finite(high), n, decision)
        for k, v in zip(METRIC_TYPES, (*row, *row_ci), strict=True):
            cols[k].append(v)

    for sc in summary.scenarios:
        for key, c in sc.comparisons.items():
            if c.replicate:
                continue
            for metric, field in COMPARISON_METRICS.items():
                if c.cache_contaminated and metric in ("cost_ratio", "cache_delta"):
                    continue
                e = getattr(c, field)
                if e is not None:
                    add(sc.name, key, metric, e.value, e.ci95, e.n_pairs, e.decision)
        for arm, a in sc.arms.items():
            if a.cache_hit_ratio is not None:
                h = a.cache_hit_ratio
                add(sc.name, arm, "cache_share", h.value, h.ci95, a.requests)
            if a.requests:
                ci = wilson_interval(a.errors, a.requests)
                add(sc.name, arm, "error_rate", a.errors / a.requests, ci, a.requests)
            if a.ttft_ms is not None:
                add(sc.name, arm, "ttft_p50_ms", a.ttft_ms.p50, a.ttft_ms.ci95, a.ttft_ms.n)
    return cols


def observation_columns(table: ObservationTable) -> dict[str, Any]:
    """The measured rows of ``table`` as columns of :data:`OBSERVATION_TYPES`."""
    t = table.measured()
    out: dict[str, Any] = {}
    for name in _OBS_TEXT:
        out[name] = np.array(getattr(t, name), dtype=object)
    for name in (*_OBS_INT, *_OBS_BOOL, *_OBS_FLOAT):
        out[name] = getattr(t, name)
    return out


@dataclass(frozen=True)
class Recorded:
    """What :func:`record_run` wrote."""

    root: Path
    run_id: str
    observations: int
    metrics: int
    seconds: float


@contextmanager
def _duckdb_errors(root: Path) -> Iterator[None]:
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HistoryError(f"{root}: cannot write the history ({first})") from None
    except OSError as exc:
        raise HistoryError(f"{root}: cannot write the history ({exc.strerror})") from None


def record_run(
    root: Path,
    meta: RunMeta,
    table: ObservationTable,
    summary: Summary,
    *,
    run_dir: Path | None = None,
) -> Recorded:
    """Record one run (its measured observations and summary) in the history at ``root``.

    Idempotent by run id: recording a run again replaces its files. The run row is written
    last, so a reader never sees a run whose metrics or observations are still being written.
    """
    import duckdb

    start = time.perf_counter()
    run_id = summary.run_id
    if not _SAFE_ID.match(run_id):
        raise HistoryError(
            f"run id {run_id!r} cannot name a history file — use letters, digits, '.', '_', '-'"
        )
    check_manifest(root, create=True)
    metrics = summary_metrics(summary)
    obs = observation_columns(table)
    rows = len(obs["run_id"])
    run = {
        "schema_version": HISTORY_SCHEMA_VERSION,
        "run_id": run_id,
        "started_at": meta.created_at,
        "finished_at": meta.finished_at,
        "recorded_at": time.time(),
        "target": summary.target,
        "target_key": target_key(summary.target_label, summary.emulator_profile),
        "emulator_profile": summary.emulator_profile,
        "is_emulator": summary.is_emulator,
        "harness_version": __version__,
        "run_dir": None if run_dir is None else str(run_dir.resolve()),
        "observations": rows,
        "summary_json": json.dumps(summary.to_json_dict(), separators=(",", ":")),
    }
    run_cols = {k: np.array([v], dtype=object) for k, v in run.items()}
    metric_cols = {k: np.array(v, dtype=object) for k, v in metrics.items()}
    name = f"{run_id}.parquet"
    # One thread: the files are small, and a run finishing must not compete for the CPU with
    # runs still timing on the same machine (CI fleets, `harness run` in parallel).
    with _duckdb_errors(root), duckdb.connect(config={"threads": 1}) as con:
        for table_name in TABLES:
            (root / table_name).mkdir(parents=True, exist_ok=True)
        _write_parquet(con, obs, OBSERVATION_TYPES, root / "observations" / name)
        _write_parquet(con, metric_cols, METRIC_TYPES, root / "metrics" / name)
        _write_parquet(con, run_cols, RUN_TYPES, root / "runs" / name)
    return Recorded(
        root=root,
        run_id=run_id,
        observations=rows,
        metrics=len(metrics["run_id"]),
        seconds=time.perf_counter() - start,
    )
