"""``harness cassettes check``: which recorded interactions are unused, missing or stale.

Turn 2 of a conversation depends on turn 1's recorded reply, so the requests a scenario sends
cannot be listed without its cassette: the check *replays* each scenario offline (linear, no
network, a throw-away run directory) and compares what was asked with what was recorded.

- **missing**: a request the scenario sends that has no recorded interaction (or no cassette);
- **unused**: a recorded interaction no request asked for (shared warm-ups excluded);
- **stale**: the scenario file changed since the cassette was recorded (sha256 in metadata).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.cassettes.files import cassette_path, load_cassette, read_meta, stale_reason
from harness.cassettes.replay import describe
from harness.errors import HarnessError
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


def _replay(directory: Path, path: Path, report: CassetteReport) -> None:
    with tempfile.TemporaryDirectory(prefix="harness-check-") as tmp:
        result = run([path], RunOptions(out=Path(tmp), replay=directory, progress=False))
        assert result.replay is not None
        cassette = result.replay.cassette
        report.missing.extend(
            f"{o.conversation} turn {o.turn}: {o.error_message}"
            for o in read_observations(result.run_dir / OBSERVATIONS_FILE)
            if o.error_type == "cassette_miss"
        )
        report.unused.extend(describe(e.request) for e in cassette.unplayed(report.scenario))
        report.played = sum(
            1 for e in cassette.entries if e.scenario == report.scenario and e.played
        )


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
        _replay(directory, path, report)
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
        for kind, items in (("missing", report.missing), ("unused", report.unused)):
            for item in items[:limit]:
                lines.append(f"  {kind}: {item}")
            if len(items) > limit:
                lines.append(f"  … {len(items) - limit} more {kind}")
    return lines
