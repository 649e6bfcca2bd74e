"""Files of a shadow run: redaction, per-process shard files, ``meta.json``, merging.

A shadow run directory is a normal run directory (``meta.json`` + ``observations.jsonl``), except
that live processes write **shards** — ``observations-<host>-<pid>-<n>.jsonl``, one open shard
per process, rotated by size or age — and :func:`merge_shards` concatenates them into
``observations.jsonl`` so that ``harness analyze``, ``report`` and ``gate`` read it like any run.
Merging is idempotent: the merged file is rebuilt from the shards (atomically) whenever the
shards changed, and left alone otherwise. Each process also leaves
``shadow-stats-<host>-<pid>-<n>.json`` (sampled, dropped, completed, errors…), summed by the
merge into ``shadow_stats.json``.

What a crash loses: the shadow pairs still in memory (queued or in flight: at most
``max_queue + max_concurrency``), plus records written but not yet fsync'd (at most
``fsync_every`` records or ``fsync_interval_s`` seconds). A torn last line is skipped by the
merge; nothing already merged is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.records import Observation, RunMeta, ToolCallRecord
from harness.rundir import (
    META_FILE,
    OBSERVATIONS_FILE,
    SHARD_GLOB,
    SHARD_RE,
    observation_problem,
    read_meta,
    shard_name,
)

STATS_FILE = "shadow_stats.json"
_MANIFEST = ".observations.merged.json"
STATS_RE = re.compile(r"^shadow-stats-.+\.json$")

#: Runs on every observation right before it is written; returns what may be stored.
Redactor = Callable[[Observation], Observation]


# --- redaction -----------------------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical_arguments(arguments: str) -> str:
    # Equal arguments hash equally however the model spaced its JSON, so the analysis can
    # still tell whether both APIs called a tool with the same arguments.
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except (json.JSONDecodeError, TypeError):
        return arguments.strip()


def fingerprint(obs: Observation) -> Observation:
    """Set ``output_sha256`` and ``output_chars`` from ``output_text`` (before redaction)."""
    if obs.output_text is None:
        return obs
    return obs.model_copy(
        update={"output_sha256": _sha256(obs.output_text), "output_chars": len(obs.output_text)}
    )


def redact_text(obs: Observation) -> Observation:
    """Default redaction: no text is stored — the reply becomes its SHA-256 and length, tool
    call arguments become ``sha256:<hex>`` of their canonical JSON (names are kept).

    SHA-256 of a short reply ("Yes.") can be guessed by trying candidates; use
    :func:`drop_text` when even that is too much.
    """
    calls = [
        ToolCallRecord(
            id=c.id, name=c.name, arguments="sha256:" + _sha256(_canonical_arguments(c.arguments))
        )
        for c in obs.tool_calls
    ]
    return obs.model_copy(update={"output_text": None, "tool_calls": calls})


def drop_text(obs: Observation) -> Observation:
    """Store lengths only: no text, no hashes of text, tool-call names without arguments."""
    calls = [ToolCallRecord(id=c.id, name=c.name, arguments="") for c in obs.tool_calls]
    return obs.model_copy(update={"output_text": None, "output_sha256": None, "tool_calls": calls})


def keep_text(obs: Observation) -> Observation:
    """Opt-in: store replies as they came (analysis then also scores JSON and semantics)."""
    return obs


# --- shards --------------------------------------------------------------------------------------


def host_label() -> str:
    """This machine's name, safe for a file name."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname()) or "host"


def _atomic_write(path: Path, text: str) -> None:
    # A unique temp name: several processes may write the same run directory at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class ShardWriter:
    """Appends observations to this process's shard, rotating by size or age; fsyncs in groups.

    Used from one thread only (the shadow writer thread).
    """

    def __init__(
        self, run_dir: Path, *, max_bytes: int, max_age_s: float, fsync_every: int
    ) -> None:
        self.run_dir = run_dir
        self.prefix = f"{host_label()}-{os.getpid()}"
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._fsync_every = fsync_every
        self._n = self._next_index()
        self.first_index = self._n
        self._fh: Any = None
        self._opened = 0.0
        self._bytes = 0
        self._unsynced = 0
        self.shards: list[Path] = []

    def _next_index(self) -> int:
        # Never append to a shard an earlier process with the same pid left behind.
        used = [
            int(m["n"])
            for p in self.run_dir.glob(shard_name(self.prefix, "*"))
            if (m := SHARD_RE.match(p.name)) and f"{m['host']}-{m['pid']}" == self.prefix
        ]
        return max(used, default=-1) + 1

    @property
    def path(self) -> Path:
        return self.run_dir / shard_name(self.prefix, self._n)

    def _open(self) -> None:
        self._fh = self.path.open("a", encoding="utf-8")
        self._opened = time.monotonic()
        self._bytes = 0
        self.shards.append(self.path)

    def _rotate_if_due(self) -> None:
        if self._fh is None:
            self._open()
            return
        if self._bytes >= self._max_bytes or time.monotonic() - self._opened >= self._max_age_s:
            self._close_file()
            self._n += 1
            self._open()

    def write(self, observations: list[Observation]) -> None:
        """Write records together (the two sides of a pair land in the same shard)."""
        self._rotate_if_due()
        text = "".join(o.model_dump_json() + "\n" for o in observations)
        self._fh.write(text)
        self._bytes += len(text)
        self._unsynced += len(observations)
        if self._unsynced >= self._fsync_every:
            self.sync()

    def sync(self) -> None:
        if self._fh is not None and self._unsynced:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._unsynced = 0

    def _close_file(self) -> None:
        if self._fh is not None:
            self._unsynced = max(self._unsynced, 1)
            self.sync()
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        self._close_file()


# --- meta and stats ------------------------------------------------------------------------------


def ensure_meta(run_dir: Path, meta: RunMeta) -> None:
    """Create ``meta.json`` unless a process of this run already did (first writer wins)."""
    path = run_dir / META_FILE
    if path.exists():
        return
    tmp = run_dir / f".{META_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.write_text(meta.model_dump_json(indent=2) + "\n", encoding="utf-8")
    try:
        os.link(tmp, path)  # atomic and exclusive: fails if another process got there first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def mark_finished(run_dir: Path) -> None:
    """Set ``finished_at`` in meta.json (the last process to stop sets the final value)."""
    path = run_dir / META_FILE
    if not path.is_file():
        return
    meta = read_meta(run_dir)
    meta.finished_at = time.time()
    _atomic_write(path, meta.model_dump_json(indent=2) + "\n")


def next_stats_path(run_dir: Path) -> Path:
    """A stats file name of this process no earlier process (with the same pid) used."""
    prefix = f"shadow-stats-{host_label()}-{os.getpid()}-"
    used = [
        int(p.name[len(prefix) : -5])
        for p in run_dir.glob(f"{prefix}*.json")
        if p.name[len(prefix) : -5].isdigit()
    ]
    return run_dir / f"{prefix}{max(used, default=-1) + 1}.json"


def write_stats(path: Path, stats: dict[str, Any]) -> None:
    _atomic_write(path, json.dumps(stats, indent=2, sort_keys=True) + "\n")


# --- merging -------------------------------------------------------------------------------------


@dataclass
class MergeResult:
    """What :func:`merge_shards` did."""

    path: Path
    shards: int
    records: int
    skipped_lines: int
    merged: bool
    stats: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _shard_key(path: Path) -> tuple[str, int, int]:
    m = SHARD_RE.match(path.name)
    assert m is not None
    return (m["host"], int(m["pid"]), int(m["n"]))


def shard_paths(run_dir: Path) -> list[Path]:
    """The shard files of a run directory, in (host, pid, n) order."""
    return sorted((p for p in run_dir.glob(SHARD_GLOB) if SHARD_RE.match(p.name)), key=_shard_key)


def _sum_stats(run_dir: Path) -> dict[str, int]:
    total: dict[str, int] = {}
    for path in sorted(run_dir.glob("shadow-stats-*.json")):
        if not STATS_RE.match(path.name):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # being replaced right now; the next merge counts it
        for name, value in data.items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[name] = total.get(name, 0) + value
    return total


def merge_shards(run_dir: Path, *, force: bool = False) -> MergeResult:
    """Concatenate the shards into ``observations.jsonl`` (atomically, idempotently).

    Only complete records with this harness's schema version are kept: a torn last line (a
    process killed mid-write, or still writing) and any damaged line are skipped and counted.
    Without shards, an existing ``observations.jsonl`` is left as it is.
    """
    out = run_dir / OBSERVATIONS_FILE
    shards = shard_paths(run_dir)
    stats = _sum_stats(run_dir)
    if stats:
        write_stats(run_dir / STATS_FILE, stats)
    if not shards:
        return MergeResult(out, 0, 0, 0, merged=False, stats=stats)
    sizes = {p.name: p.stat().st_size for p in shards}
    manifest = run_dir / _MANIFEST
    if not force and out.is_file() and manifest.is_file():
        try:
            previous = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous = None
        if isinstance(previous, dict) and previous.get("shards") == sizes:
            return MergeResult(
                out,
                len(shards),
                int(previous.get("records", 0)),
                int(previous.get("skipped_lines", 0)),
                merged=False,
                stats=stats,
            )
    lines: list[bytes] = []
    skipped = 0
    problems: list[str] = []
    for path in shards:
        data = path.read_bytes()[: sizes[path.name]]
        parts = data.split(b"\n")
        for lineno, line in enumerate(parts, 1):
            if not line.strip():
                continue
            torn = lineno == len(parts)  # no newline after it: not completely written
            try:
                record = json.loads(line)
                ok = not torn and observation_problem(record) is None
            except json.JSONDecodeError:
                ok = False
            if ok:
                lines.append(line)
            else:
                skipped += 1
                if not torn:
                    problems.append(f"{path.name}:{lineno}: not a complete observation record")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    with tmp.open("wb") as fh:
        for line in lines:
            fh.write(line + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    _atomic_write(
        manifest,
        json.dumps({"shards": sizes, "records": len(lines), "skipped_lines": skipped}) + "\n",
    )
    return MergeResult(
        out, len(shards), len(lines), skipped, merged=True, stats=stats, problems=problems
    )


def merge_if_sharded(run_dir: Path) -> None:
    """For the analysis: merge a shadow run's shards first; a no-op for scenario runs."""
    if any(SHARD_RE.match(p.name) for p in run_dir.glob(SHARD_GLOB)):
        merge_shards(run_dir)
