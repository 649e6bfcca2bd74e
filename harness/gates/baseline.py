"""Baselines: a run's summary plus the latency samples a between-run bootstrap needs.

``harness baseline save RUN_DIR [RUN_DIR…] --name NAME`` writes ``baselines/NAME.json`` (DESIGN §1),
a file CI can commit. A baseline may hold several runs: this is the one definition of "a
baseline" other features reuse. Several runs let the gate *measure* the run-to-run spread its
intervals include (with one run it is assumed; see :mod:`harness.analysis.between`); files with
one run (no ``more_runs``) read as before.

It holds a copy of ``summary.json`` and, per measured observation, only what
:func:`harness.analysis.analyze.compare_runs` resamples: keys, timings, token usage and outcome (no
reply text, no attempts, no headers). Strings are dictionary-coded and floats rounded to µs so a
few thousand requests stay a few hundred kB.

``--baseline`` accepts a name (``baselines/NAME.json``), a baseline file, or a run directory.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness import __version__
from harness.analysis.metrics import LATENCIES, TOKENS, ObservationTable
from harness.errors import HarnessError, closest
from harness.rundir import read_record_file
from harness.summary import Summary

BASELINE_SCHEMA_VERSION = 1
BASELINE_KIND = "shadow-harness-baseline"
DEFAULT_BASELINES_DIR = Path("baselines")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CODED = ("scenario", "prompt_id", "arm", "api", "model", "service_tier", "finish", "error_type")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coded(_Record):
    """A dictionary-coded string column: ``levels[codes[i]]`` is row i's value."""

    levels: list[str | None]
    codes: list[int]

    @classmethod
    def encode(cls, values: Sequence[str | None]) -> Coded:
        index: dict[str | None, int] = {}
        codes = [index.setdefault(v, len(index)) for v in values]
        return cls(levels=list(index), codes=codes)

    def decode(self) -> list[str | None]:
        return [self.levels[c] for c in self.codes]


#: columns added after baselines were first saved: an older baseline without them reads null
_LATER_LATENCIES = frozenset({"first_output_ms"})


class Samples(_Record):
    """Measured observations as columns (warm-up requests are left out)."""

    rows: int
    run_id: str
    strings: dict[str, Coded]
    turn: list[int]
    repeat: list[int]
    order: list[int]
    cold: list[bool]
    ok: list[bool]
    usage: list[list[int] | None] = Field(description=f"per row: {', '.join(TOKENS)}")
    latencies_ms: dict[str, list[float | None]]

    @model_validator(mode="after")
    def _same_length(self) -> Samples:
        columns: list[Sequence[Any]] = [
            self.turn,
            self.repeat,
            self.order,
            self.cold,
            self.ok,
            self.usage,
            *(c.codes for c in self.strings.values()),
            *self.latencies_ms.values(),
        ]
        if any(len(c) != self.rows for c in columns):
            raise ValueError(f"every column must have {self.rows} rows")
        missing = (
            set(_CODED) - self.strings.keys()
            or set(LATENCIES) - _LATER_LATENCIES - self.latencies_ms.keys()
        )
        if missing:
            raise ValueError(f"missing columns: {', '.join(sorted(missing))}")
        return self

    def table(self) -> ObservationTable:
        """The samples as an :class:`ObservationTable` (reply text and tool calls empty)."""
        strings = {k: self.strings[k].decode() for k in _CODED}
        rows: list[dict[str, Any]] = []
        for i in range(self.rows):
            usage = self.usage[i]
            row: dict[str, Any] = {k: strings[k][i] for k in _CODED}
            row.update(
                run_id=self.run_id,
                output_text=None,
                tool_calls=[],
                turn=self.turn[i],
                repeat=self.repeat[i],
                order=self.order[i],
                cold=self.cold[i],
                warmup=False,
                ok=self.ok[i],
                usage=dict(zip(TOKENS, usage, strict=True)) if usage is not None else None,
            )
            row.update({k: c[i] if (c := self.latencies_ms.get(k)) else None for k in LATENCIES})
            rows.append(row)
        return ObservationTable.from_dicts(rows)

    @classmethod
    def from_table(cls, t: ObservationTable) -> Samples:
        t = t.measured()
        rows = [i for i in range(len(t)) if not t.warmup[i]]
        t = t.take(np.array(rows, dtype=np.int64))

        def rounded(col: str) -> list[float | None]:
            values: list[float] = getattr(t, col).tolist()
            return [None if math.isnan(v) else round(v, 3) for v in values]

        usage: list[list[int] | None] = []
        token_cols = [getattr(t, k).tolist() for k in TOKENS]
        for i in range(len(t)):
            usage.append([int(c[i]) for c in token_cols] if t.has_usage[i] else None)
        run_ids = sorted(set(t.run_id))
        return cls(
            rows=len(t),
            run_id=",".join(run_ids) or "unknown",
            strings={k: Coded.encode(getattr(t, k)) for k in _CODED},
            turn=t.turn.tolist(),
            repeat=t.repeat.tolist(),
            order=t.order.tolist(),
            cold=t.cold.tolist(),
            ok=t.ok.tolist(),
            usage=usage,
            latencies_ms={k: rounded(k) for k in LATENCIES},
        )


class Baseline(_Record):
    """``baselines/<name>.json``: a run's summary and its measured latency samples."""

    schema_version: int = BASELINE_SCHEMA_VERSION
    kind: Literal["shadow-harness-baseline"] = "shadow-harness-baseline"
    name: str
    saved_at: float = Field(description="unix time")
    harness_version: str
    source_run_dir: str | None
    summary: Summary = Field(description="the first run's summary")
    samples: Samples = Field(description="the first run's samples")
    more_runs: list[Samples] = Field(
        default_factory=list,
        description="further runs' samples (`harness baseline save RUN RUN…`): their spread "
        "estimates the run-to-run variance the gate's intervals include",
    )
    more_run_dirs: list[str] = Field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    @property
    def runs(self) -> int:
        return 1 + len(self.more_runs)

    def tables(self) -> list[ObservationTable]:
        """One table per run, for :func:`harness.analysis.analyze.compare_runs`."""
        return [s.table() for s in (self.samples, *self.more_runs)]

    def label(self) -> str:
        """How reports name this baseline: ``'main' (run …)``, ``'main' (3 runs: …)``, or
        ``run …`` for a run dir."""
        if self.name == self.run_id:
            return f"run {self.run_id}"
        if self.more_runs:
            ids = ", ".join([self.run_id, *(s.run_id for s in self.more_runs)])
            return f"'{self.name}' ({self.runs} runs: {ids})"
        return f"'{self.name}' (run {self.run_id})"


@dataclass(frozen=True)
class BaselineRef:
    """A resolved ``--baseline``: where it came from and what it holds."""

    ref: str
    path: Path
    baseline: Baseline


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise HarnessError(
            f"baseline name {name!r} is not a slug — use letters, digits, '.', "
            "'_' or '-' (at most 64, no '/'), e.g. main"
        )
    return name


def _run_summary(run_dir: Path) -> Summary:
    from harness.analysis.analyze import current_summary

    return current_summary(run_dir, save=False)[0]


@dataclass(frozen=True)
class BaselineSource:
    """One run a baseline is made of: where it came from (a run directory, or
    ``history:<run-id>``), its summary and its observations."""

    label: str
    summary: Summary
    table: ObservationTable


def run_source(run_dir: Path, *, summary: Summary | None = None) -> BaselineSource:
    """A run directory as a baseline source (its summary.json, or a fresh analysis)."""
    from harness.analysis.analyze import load_table
    from harness.rundir import OBSERVATIONS_FILE

    obs = run_dir / OBSERVATIONS_FILE
    if not obs.is_file():
        raise HarnessError(
            f"{run_dir}: no {OBSERVATIONS_FILE} — is this a run directory (runs/<run-id>/)?"
        )
    summary = summary or _run_summary(run_dir)
    return BaselineSource(str(run_dir), summary, load_table(obs))


def from_sources(sources: Sequence[BaselineSource], name: str) -> Baseline:
    """A baseline of one or several runs of the same scenarios (the first run's summary is the
    one reports quote; every run's samples go into the comparison)."""
    if not sources:
        raise HarnessError("baseline save: give at least one run")
    first, *more = sources
    scenarios = {s.name for s in first.summary.scenarios}
    for src in more:
        other = {s.name for s in src.summary.scenarios}
        if not other & scenarios:
            raise HarnessError(
                f"{src.label}: shares no scenario with {first.label} ({', '.join(sorted(other))} "
                f"vs {', '.join(sorted(scenarios))}) — a baseline's runs must run the same "
                "scenarios"
            )
    return Baseline(
        name=name,
        saved_at=time.time(),
        harness_version=__version__,
        source_run_dir=first.label,
        summary=first.summary,
        samples=Samples.from_table(first.table),
        more_runs=[Samples.from_table(src.table) for src in more],
        more_run_dirs=[src.label for src in more],
    )


def from_run(run_dir: Path, name: str, *, summary: Summary | None = None) -> Baseline:
    """A baseline of ``run_dir`` (its summary.json, or a fresh analysis when there is none)."""
    return from_sources([run_source(run_dir, summary=summary)], name)


def from_runs(run_dirs: Sequence[Path], name: str) -> Baseline:
    """A baseline of one or several run directories (see :func:`from_sources`)."""
    if not run_dirs:
        raise HarnessError("baseline save: give at least one run directory")
    seen: set[str] = set()
    for d in run_dirs:
        if str(d.resolve()) in seen:
            raise HarnessError(
                f"{d}: given twice — a baseline's runs must be different runs (the spread "
                "between them is what they measure)"
            )
        seen.add(str(d.resolve()))
    return from_sources([run_source(d) for d in run_dirs], name)


def write_baseline(baseline: Baseline, *, baselines_dir: Path = DEFAULT_BASELINES_DIR) -> Path:
    """Write ``baselines_dir/<name>.json`` (replacing an older one of that name)."""
    name = check_name(baseline.name)
    baselines_dir.mkdir(parents=True, exist_ok=True)
    path = baselines_dir / f"{name}.json"
    data = baseline.model_dump(mode="json", by_alias=True)
    tmp = path.with_suffix(".json.tmp")
    # Compact: the samples are machine data; one line keeps the file small.
    tmp.write_text(
        json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8"
    )
    os.replace(tmp, path)
    return path


def save_baseline(
    run_dir: Path | Sequence[Path], name: str, *, baselines_dir: Path = DEFAULT_BASELINES_DIR
) -> Path:
    """Write ``baselines_dir/NAME.json`` from one run or several runs (replacing an older one
    of that name); return its path."""
    dirs = [run_dir] if isinstance(run_dir, Path) else list(run_dir)
    return write_baseline(from_runs(dirs, check_name(name)), baselines_dir=baselines_dir)


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; unknown schema versions and malformed files are one-line errors."""
    return read_record_file(
        path,
        Baseline,
        what="baseline",
        version=BASELINE_SCHEMA_VERSION,
        kind=BASELINE_KIND,
        fix="save it again with `harness baseline save RUN_DIR --name NAME`",
    )


def resolve_baseline(ref: str, *, baselines_dir: Path = DEFAULT_BASELINES_DIR) -> BaselineRef:
    """``--baseline REF``: an existing file or run directory, else ``baselines_dir/REF.json``."""
    path = Path(ref)
    if path.is_dir():
        return BaselineRef(ref, path, from_run(path, path.name))
    if path.is_file():
        return BaselineRef(ref, path, load_baseline(path))
    if _NAME_RE.match(ref) and not ref.endswith(".json"):
        named = baselines_dir / f"{ref}.json"
        if named.is_file():
            return BaselineRef(ref, named, load_baseline(named))
        known = (
            sorted(p.stem for p in baselines_dir.glob("*.json")) if baselines_dir.is_dir() else []
        )
        have = f" (have: {', '.join(known)})" if known else ""
        near = closest(ref, known)
        if near:  # a typo of a saved name, not a baseline to save under the typo
            raise HarnessError(
                f"baseline {ref!r} not found: no {named}{have} — did you mean {near[0]}?"
            )
        raise HarnessError(
            f"baseline {ref!r} not found: no {named}{have} — save one with "
            f"`harness baseline save RUN_DIR --name {ref}`"
        )
    raise HarnessError(
        f"baseline {ref!r} not found: no such file or run directory — give a "
        f"name in {baselines_dir}/, a baseline .json file, or runs/<run-id>/"
    )
