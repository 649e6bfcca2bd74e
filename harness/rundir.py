"""The run directory ``runs/<run-id>/``: its file names, the one reader of ``observations.jsonl``,
``meta.json`` and ``summary.json`` read and write, and the scenario digest that tells whether a
scenario file changed since the run.

Every command reads a run through this module, so a file name, a tolerated fault (the torn last
line a crash leaves) or an error message cannot drift between them. It depends on nothing but
the standard library, orjson, pydantic and the record types: analysis, report and gates can use it
without importing the runner (and with it the SDK).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError, StaleSummaryError, first_problem
from harness.records import (
    META_SCHEMA_VERSION,
    OBSERVATION_SCHEMA_VERSION,
    Observation,
    RunMeta,
)
from harness.summary import SUMMARY_SCHEMA_VERSION, Summary

__all__ = [
    "META_FILE",
    "OBSERVATIONS_FILE",
    "SHARD_GLOB",
    "SHARD_RE",
    "SUMMARY_FILE",
    "check_observation_rows",
    "gc_paused",
    "observation_problem",
    "observations_path",
    "parse_observation_rows",
    "parse_record",
    "parse_summary",
    "read_meta",
    "read_observation_rows",
    "read_observations",
    "read_record_file",
    "read_summary",
    "scenario_changed",
    "scenario_digest",
    "shard_name",
    "write_json",
    "write_meta",
    "write_summary",
]

META_FILE = "meta.json"
OBSERVATIONS_FILE = "observations.jsonl"
SUMMARY_FILE = "summary.json"
#: Shards of a shadow run: one open file per process (``observations-<host>-<pid>-<n>.jsonl``),
#: merged into :data:`OBSERVATIONS_FILE` by :func:`harness.shadow.store.merge_shards`.
SHARD_GLOB = "observations-*.jsonl"
SHARD_RE = re.compile(r"^observations-(?P<host>.+)-(?P<pid>\d+)-(?P<n>\d+)\.jsonl$")

M = TypeVar("M", bound=BaseModel)

_RERUN = "delete the line or rerun with --resume"


def shard_name(prefix: str, n: int | str) -> str:
    """File name of shard ``n`` of the process ``prefix`` (``<host>-<pid>``); ``n="*"`` gives
    the glob of all its shards."""
    return f"observations-{prefix}-{n}.jsonl"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsed JSON holds no reference cycles, and collecting
    while building 100k dicts only costs time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- observations.jsonl -------------------------------------------------------------------------


def observations_path(run_dir: Path) -> Path:
    """``run_dir/observations.jsonl``; a run that never wrote one is a user error."""
    path = run_dir / OBSERVATIONS_FILE
    if not path.is_file():
        raise HarnessError(f"{run_dir}: no {OBSERVATIONS_FILE} — did the run start?")
    return path


def observation_problem(value: object) -> str | None:
    """Why a parsed JSONL value is not an observation record of this harness (None: it is one).

    Only the envelope (a JSON object of the known schema version); the fields are checked by
    the record model or the column builder.
    """
    if not isinstance(value, dict):
        return f"not an observation (a JSON object expected, found {type(value).__name__})"
    version = value.get("schema_version")
    if version != OBSERVATION_SCHEMA_VERSION:
        return (
            f"schema_version {version!r} is not supported (this harness reads "
            f"{OBSERVATION_SCHEMA_VERSION}) — read the run with the harness version that "
            "wrote it"
        )
    return None


def parse_observation_rows(path: Path, data: bytes) -> list[dict[str, Any]]:
    """The records of an observations file's bytes as parsed JSON objects (the fast path).

    A torn final line (a crash mid-write: no newline after it, not valid JSON) is skipped, as
    the resume redoes it; blank lines are ignored; any other bad line raises one
    :class:`HarnessError` naming ``path`` and the line. Fields are not validated here: see
    :func:`check_observation_rows` and :func:`read_observations`.
    """
    lines = data.split(b"\n")
    torn_ok = not data.endswith(b"\n")
    rows: list[dict[str, Any]] = []
    loads = orjson.loads  # ~2× json.loads on these lines; the report used it before
    append = rows.append
    version = OBSERVATION_SCHEMA_VERSION
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except orjson.JSONDecodeError as exc:  # also invalid UTF-8
            if torn_ok and lineno == len(lines):
                break  # torn final write: a resume redoes it
            msg = exc.msg
            raise HarnessError(f"{path}:{lineno}: not valid JSON ({msg}) — {_RERUN}") from None
        if type(row) is not dict or row.get("schema_version") != version:
            raise HarnessError(f"{path}:{lineno}: {observation_problem(row)}")
        append(row)
    return rows


def read_observation_rows(path: Path) -> list[dict[str, Any]]:
    """Read and parse ``observations.jsonl`` (see :func:`parse_observation_rows`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read observations ({exc.strerror})") from None
    with gc_paused():
        return parse_observation_rows(path, data)


def _line_of(path: Path, index: int) -> int | str:
    """Line number of the ``index``-th record of ``path`` (only on the error path: the rows do
    not carry it, so that the fast path stays a plain list)."""
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError:
        return "?"
    seen = -1
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            seen += 1
            if seen == index:
                return lineno
    return "?"


def _invalid(path: Path, index: int, exc: ValidationError) -> HarnessError:
    where, why = first_problem(exc, "<root>")
    return HarnessError(
        f"{path}:{_line_of(path, index)}: not a valid observation ({where}: {why}) — {_RERUN}"
    )


def check_observation_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Validate parsed rows as :class:`Observation` records; the first invalid one raises,
    naming its line. For the column path, whose builder cannot say which row broke it."""
    for i, row in enumerate(rows):
        try:
            Observation.model_validate(row)
        except ValidationError as exc:
            raise _invalid(path, i, exc) from None


def read_observations(path: Path) -> Iterator[Observation]:
    """Yield the typed records of ``observations.jsonl``; same rules as
    :func:`parse_observation_rows`, and a record that does not validate raises too."""
    for i, row in enumerate(read_observation_rows(path)):
        try:
            obs = Observation.model_validate(row)
        except ValidationError as exc:
            raise _invalid(path, i, exc) from None
        yield obs


# --- meta.json, summary.json --------------------------------------------------------------------


def write_json(path: Path, data: BaseModel | dict[str, Any] | list[Any]) -> None:
    """Write JSON atomically (temp file + rename) so readers never see half a file."""
    text = (
        data.model_dump_json(indent=2)
        if isinstance(data, BaseModel)
        else json.dumps(data, indent=2, sort_keys=False)
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def parse_record(
    text: str,
    model: type[M],
    *,
    source: str,
    what: str,
    version: int,
    fix: str,
    kind: str | None = None,
) -> M:
    """Parse one JSON record of ``model`` (run meta, summary, baseline) carrying
    ``schema_version`` (and ``kind``, when given); every problem is one line naming ``source``
    (a file, a history row), the field where there is one, and ``fix``."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HarnessError(f"{source}: cannot read {what} ({exc})") from None
    if not isinstance(data, dict) or (kind is not None and data.get("kind") != kind):
        raise HarnessError(f"{source}: not a {what} file — {fix}")
    found = data.get("schema_version")
    if found != version:
        raise HarnessError(
            f"{source}: {what} schema_version {found!r} is not supported (this "
            f"harness reads {version}) — {fix}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where, why = first_problem(exc, "<root>")
        raise HarnessError(f"{source}: malformed {what} ({where}: {why}) — {fix}") from None


def read_record_file(
    path: Path, model: type[M], *, what: str, version: int, fix: str, kind: str | None = None
) -> M:
    """:func:`parse_record` of the file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8
        raise HarnessError(f"{path}: cannot read {what} ({exc})") from None
    return parse_record(
        text, model, source=str(path), what=what, version=version, fix=fix, kind=kind
    )


def read_meta(run_dir: Path) -> RunMeta:
    """``run_dir/meta.json``; a missing or bad file is one line naming it."""
    path = run_dir / META_FILE
    if not path.is_file():
        raise HarnessError(f"{run_dir}: no {META_FILE} — is this a run directory (runs/<run-id>/)?")
    return read_record_file(
        path,
        RunMeta,
        what="run meta.json",
        version=META_SCHEMA_VERSION,
        fix="a run directory written by a matching harness version",
    )


def write_meta(run_dir: Path, meta: RunMeta) -> Path:
    """Write ``run_dir/meta.json`` atomically; returns its path."""
    path = run_dir / META_FILE
    write_json(path, meta)
    return path


def write_summary(run_dir: Path, summary: Summary) -> Path:
    """Write ``RUN_DIR/summary.json`` atomically; returns its path."""
    path = run_dir / SUMMARY_FILE
    write_json(path, summary.to_json_dict())
    return path


def parse_summary(text: str, *, source: str, fix: str, stale_fix: str) -> Summary:
    """Parse a summary.json's text; one written under an older schema raises
    :class:`StaleSummaryError` (its figures mean something else now: ``stale_fix``)."""
    try:
        found = json.loads(text).get("schema_version")
    except (ValueError, AttributeError):
        found = None  # parse_record names the problem
    if isinstance(found, int) and found < SUMMARY_SCHEMA_VERSION:
        raise StaleSummaryError(
            f"{source}: summary schema_version {found} was written by an older harness (its "
            f"n_pairs counted turns, not conversations) — {stale_fix}"
        )
    return parse_record(
        text, Summary, source=source, what="summary", version=SUMMARY_SCHEMA_VERSION, fix=fix
    )


def read_summary(path: Path) -> Summary:
    """Load a summary.json (a run directory or the file itself); one written under an older
    schema raises :class:`StaleSummaryError` (re-analyse the run's observations)."""
    if path.is_dir():
        path = path / SUMMARY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8
        raise HarnessError(f"{path}: cannot read summary ({exc})") from None
    return parse_summary(
        text,
        source=str(path),
        fix="re-run `harness analyze`",
        stale_fix=f"re-analyse with `harness analyze {path.parent}`",
    )


# --- did the scenario change since the run? ------------------------------------------------------


#: Scenario fields that only the analysis reads: editing them changes no request, so neither a
#: resume nor a cassette goes stale (and a re-analysis picks the new value up).
ANALYSIS_ONLY_FIELDS = frozenset({"margins"})


def scenario_digest(scenario: BaseModel) -> str:
    """Hash of the loaded scenario (includes resolved), to detect edits between run and resume.

    Only the keys the file sets count, so a new optional scenario key (which older files do not
    set) does not make every recorded run and cassette stale. Unset, not "equal to its
    default": ``stream: true`` over ``defaults: {stream: false}`` holds the default's value
    but changes the request."""
    exclude = set(ANALYSIS_ONLY_FIELDS & set(type(scenario).model_fields))
    dumped = scenario.model_dump_json(exclude=exclude, exclude_unset=True)
    return hashlib.sha256(dumped.encode()).hexdigest()


def scenario_changed(recorded: object, scenario: BaseModel, *, unrecorded: bool) -> bool:
    """Whether ``scenario`` (as loaded now) differs from the one whose digest a run or cassette
    recorded (``meta.json`` ``scenarios[].sha256``).

    ``unrecorded`` is the answer when no digest was recorded: callers that must not trust the
    file then (resume, output schemas) say True; those that only add a note say False.
    """
    if not recorded:
        return unrecorded
    return recorded != scenario_digest(scenario)
