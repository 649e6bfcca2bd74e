"""Reading the run history: DuckDB views over the per-run Parquet files, trends, past runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from harness.analysis.metrics import ObservationTable
from harness.errors import HarnessError, HistoryError
from harness.history.store import (
    HISTORY_SCHEMA_VERSION,
    METRIC_TYPES,
    OBSERVATION_TYPES,
    RUN_TYPES,
    TABLES,
    check_manifest,
    table_files,
)
from harness.rundir import parse_summary
from harness.summary import Summary

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "History",
    "PastRun",
    "Trend",
    "TrendPoint",
    "open_history",
]

#: every trend metric: its name in tables and charts, and its kind for :func:`harness.fmt.estimate`
METRICS: dict[str, tuple[str, str]] = {
    "ttft_ratio": ("TTFT p50 ratio", "ratio"),
    "total_ratio": ("total p50 ratio", "ratio"),
    "cost_ratio": ("cost ratio", "ratio"),
    "cache_delta": ("cache hit Δ", "points"),
    "cache_share": ("cache share", "share"),
    "error_rate": ("error rate", "share"),
    "ttft_p50_ms": ("TTFT p50", "ms"),
}
DEFAULT_METRICS = ("ttft_ratio", "cost_ratio", "cache_share", "error_rate")
_TYPES = {"runs": RUN_TYPES, "metrics": METRIC_TYPES, "observations": OBSERVATION_TYPES}


class TrendPoint(BaseModel):
    """One metric of one run: a comparison's (``subject`` = ``<a>_vs_<b>``) or an arm's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    started_at: float
    scenario: str
    target: str
    subject: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    decision: str | None


@dataclass(frozen=True)
class Trend:
    """A trend query's answer: the points, and per run × arm the requests the history's raw
    observations hold (requests, errors), which the summary's figures were computed from."""

    points: list[TrendPoint]
    requests: dict[tuple[str, str, str], tuple[int, int]]

    def groups(self) -> dict[tuple[str, str], list[TrendPoint]]:
        """Points by (scenario, target), each in run order."""
        out: dict[tuple[str, str], list[TrendPoint]] = {}
        for p in self.points:
            out.setdefault((p.scenario, p.target), []).append(p)
        return out


@dataclass(frozen=True)
class PastRun:
    """A recorded run: its summary and its measured observations."""

    run_id: str
    run_dir: str | None
    summary: Summary
    table: ObservationTable


def _empty_view(types: dict[str, str]) -> str:
    columns = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in types.items())
    return f"SELECT {columns} LIMIT 0"


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


class History:
    """An open history: an in-memory DuckDB connection with views ``runs``, ``metrics`` and
    ``observations`` over the Parquet files (only runs whose run row exists are visible)."""

    def __init__(self, root: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.root = root
        self.con = con
        self.files = {t: table_files(root, t) for t in TABLES}

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """A DuckDB error becomes one :class:`HistoryError` naming the damaged file."""
        import duckdb

        try:
            yield
        except duckdb.Error as exc:
            raise self._damaged(exc) from None

    def _damaged(self, exc: Exception) -> HistoryError:
        import duckdb

        for table in TABLES:
            for path in self.files[table]:
                try:
                    self.con.execute(f"SELECT count(*) FROM read_parquet({_sql_list([path])})")
                except duckdb.Error as each:
                    why = str(each).strip().splitlines()[0]
                    return HistoryError(
                        f"{path}: damaged history file ({why}) — delete it; `harness analyze "
                        "RUN_DIR` records that run again (history is an index, the run "
                        "directory the record)"
                    )
        why = str(exc).strip().splitlines()[0]
        return HistoryError(f"{self.root}: cannot read the history ({why})")

    def _views(self) -> None:
        for table in TABLES:
            files = self.files[table]
            source = (
                f"SELECT * FROM read_parquet({_sql_list(files)}, union_by_name = true)"
                if files
                else _empty_view(_TYPES[table])
            )
            self.con.execute(f"CREATE VIEW {table} AS {source}")
        newer = self.con.execute(
            "SELECT run_id, schema_version FROM runs WHERE schema_version > ? LIMIT 1",
            [HISTORY_SCHEMA_VERSION],
        ).fetchone()
        if newer is not None:
            raise HistoryError(
                f"{self.root / 'runs' / (str(newer[0]) + '.parquet')}: history schema_version "
                f"{newer[1]} was written by a newer harness (this one reads "
                f"{HISTORY_SCHEMA_VERSION}) — upgrade shadow-harness"
            )

    def run_count(self) -> int:
        with self.guard():
            row = self.con.execute("SELECT count(*) FROM runs").fetchone()
        return int(row[0]) if row else 0

    def trend(
        self,
        *,
        scenario: str | None = None,
        target: str | None = None,
        arm: str | None = None,
        since: float | None = None,
        until: float | None = None,
        metrics: Sequence[str] = DEFAULT_METRICS,
        last: int | None = 20,
    ) -> Trend:
        """The ``metrics`` of the last ``last`` runs of each scenario and target (oldest first),
        optionally for one ``scenario``, ``target``, runs started in [``since``, ``until``], and
        the comparisons and arms involving ``arm``."""
        where = ["m.metric IN (SELECT unnest(?))"]
        params: list[Any] = [list(metrics)]
        optional: list[tuple[str, object]] = [
            ("m.scenario = ?", scenario),
            ("r.target_key = ?", target),
            ("r.started_at >= ?", since),
            ("r.started_at <= ?", until),
        ]
        for clause, value in optional:
            if value is not None:
                where.append(clause)
                params.append(value)
        if arm is not None:
            where.append("(m.subject = ? OR starts_with(m.subject, ?) OR ends_with(m.subject, ?))")
            params += [arm, f"{arm}_vs_", f"_vs_{arm}"]
        sql = f"""
            WITH m AS (
                SELECT m.*, r.started_at, r.target_key
                FROM metrics m JOIN runs r USING (run_id)
                WHERE {" AND ".join(where)}
            ),
            ranked AS (
                SELECT scenario, target_key, run_id,
                       row_number() OVER (PARTITION BY scenario, target_key
                                          ORDER BY started_at DESC, run_id DESC) AS k
                FROM (SELECT DISTINCT scenario, target_key, run_id, started_at FROM m)
            )
            SELECT m.run_id, m.started_at, m.scenario, m.target_key, m.subject, m.metric,
                   m.value, m.ci_low, m.ci_high, m.n, m.decision
            FROM m JOIN ranked USING (scenario, target_key, run_id)
            WHERE ? IS NULL OR k <= ?
            ORDER BY m.scenario, m.target_key, m.started_at, m.run_id, m.subject, m.metric
        """
        params += [last, last]
        names = list(TrendPoint.model_fields)
        with self.guard():
            rows = self.con.execute(sql, params).fetchall()
            points = [TrendPoint(**dict(zip(names, r, strict=True))) for r in rows]
            requests = self._requests(points)
        return Trend(points, requests)

    def _requests(
        self, points: Sequence[TrendPoint]
    ) -> dict[tuple[str, str, str], tuple[int, int]]:
        keys = sorted({(p.run_id, p.scenario) for p in points})
        if not keys:
            return {}
        rows = self.con.execute(
            """
            SELECT run_id, scenario, arm, count(*), count(*) FILTER (WHERE NOT ok)
            FROM observations
            WHERE NOT warmup AND run_id IN (SELECT unnest(?)) AND scenario IN (SELECT unnest(?))
            GROUP BY ALL
            """,
            [sorted({k[0] for k in keys}), sorted({k[1] for k in keys})],
        ).fetchall()
        return {(r[0], r[1], r[2]): (int(r[3]), int(r[4])) for r in rows}

    def last_runs(self, n: int, *, scenario: str | None = None) -> list[str]:
        """The ``n`` most recent runs of the most recent run's target (newest first),
        with ``scenario`` when given."""
        where = "WHERE run_id IN (SELECT run_id FROM metrics WHERE scenario = ?)"
        params: list[Any] = [scenario] if scenario is not None else []
        with self.guard():
            rows = self.con.execute(
                f"""
                WITH r AS (SELECT run_id, started_at, target_key FROM runs
                           {where if scenario is not None else ""})
                SELECT run_id FROM r
                WHERE target_key = (SELECT target_key FROM r
                                    ORDER BY started_at DESC, run_id DESC LIMIT 1)
                ORDER BY started_at DESC, run_id DESC LIMIT ?
                """,
                [*params, n],
            ).fetchall()
        return [str(r[0]) for r in rows]

    def past_run(self, run_id: str) -> PastRun:
        """A recorded run's summary and observations (e.g. for a baseline)."""
        with self.guard():
            row = self.con.execute(
                "SELECT run_dir, summary_json FROM runs WHERE run_id = ?", [run_id]
            ).fetchone()
            if row is None:
                raise HistoryError(f"{self.root}: no run {run_id!r} in the history")
            cols = ", ".join(f'"{c}"' for c in OBSERVATION_TYPES)
            data = self.con.execute(
                f"SELECT {cols} FROM observations WHERE run_id = ?", [run_id]
            ).fetchnumpy()
        return PastRun(run_id, row[0], _summary(self.root, run_id, row[1]), _table(data))


def _summary(root: Path, run_id: str, text: str) -> Summary:
    fix = f"re-record it: `harness analyze RUN_DIR` of run {run_id}"
    try:
        return parse_summary(text, source=f"{root}: run {run_id}", fix=fix, stale_fix=fix)
    except HarnessError as exc:
        raise HistoryError(str(exc)) from None


def _column(v: Any, fill: Any) -> list[Any] | np.ndarray[Any, Any]:
    """A fetched column with NULLs as ``fill`` (``np.ma.filled(v, None)`` would use the
    array's own fill value, ``'?'`` for text)."""
    if not isinstance(v, np.ma.MaskedArray):
        return np.asarray(v) if fill is not None else list(v)
    mask = np.ma.getmaskarray(v)
    data = np.asarray(v.data)
    if fill is None:
        return [None if m else str(x) for x, m in zip(data.tolist(), mask.tolist(), strict=True)]
    return np.where(mask, fill, data)


def _table(data: dict[str, Any]) -> ObservationTable:
    n = len(data["run_id"])
    cols: dict[str, Any] = {}
    for c, t in OBSERVATION_TYPES.items():
        v = data[c]
        if t == "VARCHAR":
            cols[c] = [None if x is None else str(x) for x in _column(v, None)]
        elif t == "BOOLEAN":
            cols[c] = np.asarray(_column(v, False), dtype=np.bool_)
        elif t == "BIGINT":
            cols[c] = np.asarray(_column(v, 0), dtype=np.int64)
        else:
            cols[c] = np.asarray(_column(v, np.nan), dtype=np.float64)
    # background timings are per-request detail the history does not keep (its trends do
    # not chart them); the conversation-state counts are columns like the rest
    return ObservationTable(
        output_text=[None] * n, tool_calls=[()] * n, background=[None] * n, **cols
    )


def open_history(root: Path) -> History:
    """Open the history at ``root`` for reading; a missing, damaged or newer history is one
    :class:`HistoryError`."""
    import duckdb

    if not root.is_dir():
        raise HistoryError(
            f"{root}: no run history here — runs record it when they finish (`harness run`, "
            "`harness analyze`); point --history (or $HARNESS_HISTORY) at it"
        )
    check_manifest(root, create=False)
    history = History(root, duckdb.connect())
    try:
        with history.guard():
            history._views()
    except BaseException:
        history.close()
        raise
    return history
