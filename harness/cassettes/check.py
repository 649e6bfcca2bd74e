"""``harness cassettes check``: which recorded interactions are unused, missing or stale.

Turn 2 of a conversation depends on turn 1's recorded reply, so the requests a scenario sends
cannot be listed without its cassette: the check *replays* each scenario offline (linear, no
network, a throw-away run directory) and compares what was asked with what was recorded.

- **missing**: a request the scenario sends that has no recorded interaction (or no cassette);
- **unused**: a recorded interaction no request asked for (shared warm-ups excluded);
- **stale**: the scenario file changed since the cassette was recorded (sha256 in metadata).

``harness run --replay`` makes the same check for its own plan before it replays
(:func:`require_fresh_cassettes`): requests its cassettes lack are an error, not a run with
misses; a stale cassette that still holds every request is a warning.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.cassettes.files import (
    cassette_path,
    load_cassette,
    read_meta,
    rerecord_command,
    stale_reason,
)
from harness.cassettes.replay import describe
from harness.errors import CassetteError, HarnessError
from harness.records import CASSETTE_MISS
from harness.rundir import OBSERVATIONS_FILE, read_observations
from harness.runner.execute import RunOptions, run
from harness.scenario.load import Scenario, load_scenario


@dataclass
class CassetteReport:
    """Findings for one cassette (or one scenario that has none)."""

    cassette: Path
    scenario: str
    interactions: int = 0
    played: int = 0
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    stale: str | None = None
    note: str | None = None
    #: the missing requests by name only (``conversation turn N``), for one-line errors
    missed: list[str] = field(default_factory=list)
    #: the command that records this cassette again
    rerecord: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unused or self.stale)


def _scenarios(scenarios_dir: Path) -> dict[str, tuple[Path, Scenario]]:
    if not scenarios_dir.is_dir():
        raise HarnessError(f"--scenarios {scenarios_dir}: not a directory")
    found: dict[str, tuple[Path, Scenario]] = {}
    for path in sorted([*scenarios_dir.glob("*.yaml"), *scenarios_dir.glob("*.yml")]):
        scenario = load_scenario(path)
        found[scenario.name] = (path, scenario)
    return found


def _replay(
    directory: Path,
    paths: Sequence[Path],
    reports: dict[str, CassetteReport],
    options: RunOptions | None = None,
) -> None:
    """Replay ``paths`` offline into a throw-away directory (with ``options``, as the run being
    checked would) and fill each scenario's report with what was missed and left unplayed."""
    with tempfile.TemporaryDirectory(prefix="harness-check-") as tmp:
        result = run(
            list(paths),
            replace(
                options or RunOptions(),
                out=Path(tmp),
                replay=directory,
                record=None,
                resume=None,
                progress=False,
            ),
        )
        assert result.replay is not None
        cassette = result.replay.cassette
        for o in read_observations(result.run_dir / OBSERVATIONS_FILE):
            if o.error_type == CASSETTE_MISS and o.scenario in reports:
                reports[o.scenario].missing.append(
                    f"{o.conversation} turn {o.turn}: {o.error_message}"
                )
                reports[o.scenario].missed.append(f"{o.conversation} turn {o.turn}")
        for name, report in reports.items():
            report.unused.extend(describe(e.request) for e in cassette.unplayed(name))
            report.played = sum(1 for e in cassette.entries if e.scenario == name and e.played)


def check_cassettes(directory: Path, scenarios_dir: Path) -> list[CassetteReport]:
    """Check every cassette in ``directory`` against the scenarios in ``scenarios_dir``."""
    if not directory.is_dir():
        raise HarnessError(f"{directory}: not a directory of cassettes")
    scenarios = _scenarios(scenarios_dir)
    reports: list[CassetteReport] = []
    seen: set[Path] = set()
    for name, (path, scenario) in scenarios.items():
        cassette = cassette_path(directory, name)
        seen.add(cassette)
        report = CassetteReport(cassette, name)
        reports.append(report)
        if not cassette.is_file():
            report.missing.append(
                f"no cassette for scenario {name} ({path}) — record it with "
                f"harness run {path} --record {directory}"
            )
            continue
        metadata, interactions = load_cassette(cassette)
        meta = read_meta(cassette, metadata)
        report.interactions = sum(1 for _, r in interactions if not r.get("shared"))
        report.stale = stale_reason(meta, scenario)
        report.rerecord = rerecord_command(directory, meta, path)
        _replay(directory, [path], {name: report})
    for cassette in sorted(directory.glob("*.yaml")):
        if cassette in seen:
            continue
        metadata, interactions = load_cassette(cassette)
        name = str(metadata.get("scenario") or cassette.stem)
        note = (
            f"scenario {name} replays from {cassette_path(directory, name)}, not this file"
            if name in scenarios
            else f"no scenario named {name!r} in {scenarios_dir}"
        )
        report = CassetteReport(
            cassette,
            name,
            note=note,
            interactions=sum(1 for _, r in interactions if not r.get("shared")),
        )
        report.unused.extend(describe(r) for r, resp in interactions if not resp.get("shared"))
        reports.append(report)
    return reports


def check_replay(paths: Sequence[Path], options: RunOptions) -> list[CassetteReport]:
    """What ``harness run --replay`` with ``options`` would find wrong with its cassettes:
    stale ones and the requests of its plan that have no recorded interaction (found by an
    offline replay into a throw-away directory). Unused interactions are no problem here: a
    run may ask for fewer repeats than were recorded."""
    if options.replay is None:
        raise ValueError("check_replay: options.replay is not set")
    directory = options.replay
    reports: dict[str, CassetteReport] = {}
    for path in paths:
        scenario = load_scenario(path)
        cassette = cassette_path(directory, scenario.name)
        if not cassette.is_file():
            continue  # the replay itself refuses it, naming the file and the fix
        metadata, interactions = load_cassette(cassette)
        meta = read_meta(cassette, metadata)
        reports[scenario.name] = CassetteReport(
            cassette,
            scenario.name,
            interactions=sum(1 for _, r in interactions if not r.get("shared")),
            stale=stale_reason(meta, scenario),
            rerecord=rerecord_command(directory, meta, path),
        )
    _replay(directory, paths, reports, options)
    return list(reports.values())


def _missing(r: CassetteReport, limit: int) -> str:
    names = ", ".join(r.missed[:limit])
    if len(r.missed) > limit:
        names += f", … {len(r.missed) - limit} more"
    return f"{len(r.missed)} request(s) have no recorded interaction ({names})"


def replay_findings(
    reports: Sequence[CassetteReport], *, allow_flag: str, allowed: bool = False, limit: int = 3
) -> tuple[str | None, list[str]]:
    """The one-line error that stops a replay, and its warnings.

    A cassette that lacks requests of the plan is an error (stale or not), naming a few of them,
    their count and the command that re-records; ``allowed`` turns it into a warning. A stale
    cassette that still holds every request is a warning: only keys that send nothing changed
    (gates, similarity, claims), so the replay is exact, and re-recording — paid, for an OpenAI
    cassette — only to edit a gate would be a waste.
    """
    errors, warnings = [], []
    for r in reports:
        if r.missing:
            what = ([f"stale: {r.stale}"] if r.stale else []) + [_missing(r, limit)]
            errors.append(f"{r.cassette}: {'; '.join(what)} — re-record with: {r.rerecord}")
        elif r.stale:
            warnings.append(
                f"{r.cassette}: stale: {r.stale}, but every request of the plan is recorded "
                f"(replaying it; refresh it with: {r.rerecord})"
            )
    if not errors:
        return None, warnings
    if allowed:
        message = f"cassettes lack requests of the plan, replaying anyway ({allow_flag}): "
        return None, [message + " | ".join(errors), *warnings]
    tail = f"or pass {allow_flag} to replay them anyway, the misses failing as cassette_miss"
    return f"cassettes lack requests of the plan: {' | '.join(errors)} ({tail})", warnings


def require_fresh_cassettes(
    paths: Sequence[Path],
    options: RunOptions,
    *,
    allow_stale: bool = False,
    allow_flag: str = "--allow-stale",
) -> list[str]:
    """Refuse (:class:`CassetteError`, exit 2), before anything is replayed, a replay whose
    cassettes lack requests of its plan (unless ``allow_stale``); return the warnings."""
    error, warnings = replay_findings(
        check_replay(paths, options), allow_flag=allow_flag, allowed=allow_stale
    )
    if error is not None:
        raise CassetteError(error)
    return warnings


def format_reports(reports: list[CassetteReport], *, limit: int = 10) -> list[str]:
    """Human-readable lines: one header per cassette, then up to ``limit`` items per kind."""
    lines: list[str] = []
    for report in reports:
        status = "ok" if report.ok else "PROBLEMS"
        lines.append(
            f"{report.cassette}: {status} — scenario {report.scenario}, "
            f"{report.played}/{report.interactions} interactions played, "
            f"{len(report.missing)} missing, {len(report.unused)} unused"
            + (", stale" if report.stale else "")
        )
        if report.note:
            lines.append(f"  note: {report.note}")
        if report.stale:
            lines.append(f"  stale: {report.stale}")
        if not report.ok and report.rerecord:
            lines.append(f"  re-record with: {report.rerecord}")
        for kind, items in (("missing", report.missing), ("unused", report.unused)):
            for item in items[:limit]:
                lines.append(f"  {kind}: {item}")
            if len(items) > limit:
                lines.append(f"  … {len(items) - limit} more {kind}")
    return lines
