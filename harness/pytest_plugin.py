"""pytest plugin (``pytest11`` entry point ``harness``): shadow-test a scenario inside a test.

The migration guide's ``test_api_equivalence`` becomes::

    @pytest.mark.shadow(scenario="scenarios/quickstart.yaml")
    def test_api_equivalence(shadow):
        shadow.check()

The ``shadow`` fixture runs the marked scenario once per session (against the emulator, a
cassette or a live target, per the ``--harness-*`` options), analyses it, and decides its gates
(the scenario's ``gates:``, plus ``gates={...}`` on the marker, plus a baseline when one is
given). ``shadow.summary`` is the run's :class:`harness.summary.Summary`. A failing gate fails the
test with the gate explanation — through ``shadow.check()``, or after the test body when the
test did not call it (``check=False`` on the marker turns that off).

Nothing here is imported at pytest start-up beyond this module: the harness loads when a test
asks for ``shadow``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.gates.config import GateConfig
    from harness.gates.evaluate import GateReport, GateResult
    from harness.summary import ArmSummary, Comparison, ScenarioSummary, Summary

MODES = ("live", "replay", "record")
_MARKER_KEYS = frozenset(
    {
        "scenario",
        "baseline",
        "gates",
        "config",
        "repeats",
        "profile",
        "time_scale",
        "seed",
        "concurrency",
        "client",
        "check",
    }
)
_MARKER_DOC = (
    "shadow(scenario, *, baseline=None, gates=None, config=None, repeats=None, "
    "profile=None, time_scale=None, seed=None, concurrency=None, client=None, "
    "check=True): run a Shadow Harness scenario for the `shadow` fixture and fail "
    "the test when a gate fails"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    from harness.cli.common import PROFILE_ENV, default_emulator_profile

    group = parser.getgroup("harness", "Shadow Harness (Chat Completions vs Responses)")
    group.addoption(
        "--harness-target",
        default="emulator",
        metavar="TARGET",
        help="emulator (default: built-in, not OpenAI), openai (needs "
        "OPENAI_API_KEY), or a base URL",
    )
    group.addoption(
        "--harness-mode",
        choices=MODES,
        default="live",
        help="live: send to the target (default); replay: play cassettes, no "
        "network; record: send and record cassettes",
    )
    group.addoption(
        "--harness-cassettes",
        default="cassettes",
        metavar="DIR",
        help="cassette directory for replay/record (default cassettes/)",
    )
    group.addoption(
        "--harness-allow-stale",
        action="store_true",
        default=False,
        help="replay mode: replay cassettes that lack requests of the plan anyway "
        "(default: the test errors, naming them and the command that re-records)",
    )
    group.addoption(
        "--harness-report",
        default=None,
        metavar="DIR",
        help="keep runs in DIR/runs and write reports (report.html, summary.md, "
        "junit.xml with gate cases) to DIR/reports (default: a temporary directory, "
        "no reports)",
    )
    group.addoption(
        "--harness-baseline",
        default=None,
        metavar="NAME|FILE|RUN_DIR",
        help="baseline for regression checks when the marker names none",
    )
    group.addoption(
        "--harness-baselines",
        default="baselines",
        metavar="DIR",
        help="where baseline names are looked up (default baselines/)",
    )
    group.addoption(
        "--harness-emulator-profile",
        default=default_emulator_profile(),
        metavar="NAME|FILE",
        help=f"emulator profile (default ${PROFILE_ENV}, else parity)",
    )
    group.addoption(
        "--harness-time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="scale the emulator's delays (0.1 = ten times faster)",
    )
    group.addoption(
        "--harness-repeats",
        type=int,
        default=None,
        metavar="N",
        help="override every scenario's repeats",
    )
    group.addoption(
        "--harness-seed",
        type=int,
        default=None,
        metavar="N",
        help="run seed: cache nonces and arm order (default: random and recorded; "
        "a replay takes the cassette's)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_DOC)
    config.stash[_RUNS] = {}


# --- one run per distinct (scenario, options) ---------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    scenario: Path
    target: str
    mode: str
    cassettes: Path
    profile: str
    time_scale: float
    repeats: int | None
    seed: int | None
    concurrency: int
    client: str
    baseline: str | None
    baselines: Path
    gates: tuple[tuple[str, float], ...]
    config: Path | None
    allow_stale: bool = False

    def run_key(self) -> str:
        """Runs are shared by tests that differ only in how they gate."""
        parts = (
            self.scenario,
            self.target,
            self.mode,
            self.cassettes,
            self.profile,
            self.time_scale,
            self.repeats,
            self.seed,
            self.concurrency,
            self.client,
        )
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


@dataclass
class _Done:
    run_dir: Path
    summary: Summary
    #: what the cassette check before a replay warned of (a stale cassette holding every request)
    warnings: list[str] = field(default_factory=list)


_RUNS = pytest.StashKey[dict[str, _Done]]()
#: Inconclusive gates seen by the tests of this session: (test node id, gate result).
_WARNINGS = pytest.StashKey[list[tuple[str, "GateResult"]]]()
_SHADOW = pytest.StashKey["ShadowRun"]()


@dataclass
class ShadowRun:
    """What the ``shadow`` fixture gives a test: the run, its summary and its gate report."""

    run_dir: Path
    summary: Summary
    report: GateReport
    reports_dir: Path | None = None
    checked: bool = field(default=False, repr=False)

    @property
    def passed(self) -> bool:
        """No gate failed (inconclusive and skipped gates pass)."""
        return self.report.passed

    def explain(self) -> str:
        """The gate report as ``harness gate`` prints it."""
        from harness.cli.gate import format_report

        return format_report(self.report)

    def check(self) -> GateReport:
        """Fail the test (with the gate explanation) if a gate failed; return the report."""
        self.checked = True
        if not self.report.passed:
            pytest.fail(self.explain(), pytrace=False)
        return self.report

    def scenario(self, name: str | None = None) -> ScenarioSummary:
        """The summary of one scenario (the only one when ``name`` is None)."""
        scenarios = self.summary.scenarios
        if name is None:
            if len(scenarios) != 1:
                raise LookupError(f"the run has {len(scenarios)} scenarios; name one")
            return scenarios[0]
        for sc in scenarios:
            if sc.name == name:
                return sc
        raise LookupError(f"no scenario {name!r} (have: {', '.join(s.name for s in scenarios)})")

    def comparison(self, key: str = "responses_vs_chat", scenario: str | None = None) -> Comparison:
        """A comparison such as ``responses_vs_chat`` (ratios a/b with 95 % CIs)."""
        comparisons = self.scenario(scenario).comparisons
        if key not in comparisons:
            raise LookupError(f"no comparison {key!r} (have: {', '.join(comparisons)})")
        return comparisons[key]

    def arm(self, name: str, scenario: str | None = None) -> ArmSummary:
        arms = self.scenario(scenario).arms
        if name not in arms:
            raise LookupError(f"no arm {name!r} (have: {', '.join(arms)})")
        return arms[name]


def _resolve(path: str | Path, request: pytest.FixtureRequest) -> Path:
    """A path relative to the test file's directory, else to the rootdir."""
    p = Path(path)
    if p.is_absolute():
        return p
    for base in (Path(request.node.path).parent, request.config.rootpath):
        if (base / p).exists():
            return (base / p).resolve()
    return (request.config.rootpath / p).resolve()


def _spec(marker: pytest.Mark, request: pytest.FixtureRequest) -> _Spec:
    opt = request.config.getoption
    unknown = set(marker.kwargs) - _MARKER_KEYS
    if unknown:
        pytest.fail(
            f"@pytest.mark.shadow: unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_MARKER_KEYS))}",
            pytrace=False,
        )
    kw: dict[str, Any] = dict(marker.kwargs)
    scenario = kw.get("scenario", marker.args[0] if marker.args else None)
    if scenario is None:
        pytest.fail("@pytest.mark.shadow needs scenario=PATH", pytrace=False)
    gates = kw.get("gates") or {}
    if not isinstance(gates, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in gates.values()
    ):
        pytest.fail(
            "@pytest.mark.shadow(gates=...) takes a mapping of gate keys to "
            "numbers, e.g. {'responses_vs_chat.ttft_p50_ratio_max': 1.5}",
            pytrace=False,
        )
    baseline = kw.get("baseline", opt("harness_baseline"))
    if baseline is not None and _resolve(baseline, request).exists():
        baseline = str(_resolve(baseline, request))  # a file or run directory, not a name
    profile = str(kw.get("profile") or opt("harness_emulator_profile"))
    if profile.endswith((".yaml", ".yml")):
        profile = str(_resolve(profile, request))
    config = kw.get("config")
    return _Spec(
        scenario=_resolve(scenario, request),
        target=opt("harness_target"),
        mode=opt("harness_mode"),
        cassettes=_resolve(opt("harness_cassettes"), request),
        profile=profile,
        time_scale=float(kw.get("time_scale") or opt("harness_time_scale")),
        repeats=kw.get("repeats") or opt("harness_repeats"),
        seed=int(kw["seed"]) if kw.get("seed") is not None else opt("harness_seed"),
        concurrency=int(kw.get("concurrency") or 1),
        client=str(kw.get("client") or "sdk"),
        baseline=baseline,
        baselines=_resolve(opt("harness_baselines"), request),
        gates=tuple(sorted((str(k), float(v)) for k, v in gates.items())),
        config=_resolve(config, request) if config else None,
        allow_stale=bool(opt("harness_allow_stale")),
    )


def _out(config: pytest.Config, tmp: pytest.TempPathFactory) -> tuple[Path, Path | None]:
    report = config.getoption("harness_report")
    if report:
        root = Path(report)
        return root / "runs", root / "reports"
    return tmp.getbasetemp() / "harness-runs", None


def _execute(spec: _Spec, runs_dir: Path) -> _Done:
    from harness.analysis.analyze import analyze_run
    from harness.rundir import write_summary
    from harness.runner.execute import RunOptions, run

    options = RunOptions(
        target=spec.target,
        emulator_profile=spec.profile,
        emulator_time_scale=spec.time_scale,
        out=runs_dir,
        repeats=spec.repeats,
        seed=spec.seed,
        progress=False,
        concurrency=spec.concurrency,
        client="raw" if spec.client == "raw" else "sdk",
        record=spec.cassettes if spec.mode == "record" else None,
        replay=spec.cassettes if spec.mode == "replay" else None,
    )
    warnings: list[str] = []
    if spec.mode == "replay":
        from harness.cassettes.check import require_fresh_cassettes

        warnings = require_fresh_cassettes(
            [spec.scenario],
            options,
            allow_stale=spec.allow_stale,
            allow_flag="--harness-allow-stale",
        )
    runs_dir.mkdir(parents=True, exist_ok=True)
    result = run([spec.scenario], options)
    if result.interrupted:
        raise KeyboardInterrupt
    if result.fatal is not None or result.stopped_arms:
        from harness.errors import TargetError

        if result.fatal is not None:
            raise TargetError(f"run stopped at its first fatal error ({result.fatal})")
        # a stopped arm leaves one API's side of the comparison empty: no gate can pass on it
        stopped = "; ".join(
            f"{scenario}/{arm}: {why}" for (scenario, arm), why in result.stopped_arms.items()
        )
        raise TargetError(
            f"arm stopped at its first error (the target lacks its endpoint): {stopped}"
        )
    summary = analyze_run(result.run_dir)
    write_summary(result.run_dir, summary)
    return _Done(result.run_dir, summary, warnings)


def _gate_config(spec: _Spec, run_dir: Path) -> GateConfig:
    from harness.gates.config import load_gates_file, parse_gate, scenario_gates

    config = load_gates_file(spec.config) if spec.config else scenario_gates(run_dir)
    if spec.gates:
        extra = [parse_gate(k, v, "@pytest.mark.shadow(gates=...)") for k, v in spec.gates]
        config = config.overridden(extra)
    return config


@pytest.fixture
def shadow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ShadowRun:
    """Run the scenario of ``@pytest.mark.shadow(scenario=...)`` and gate it (see module doc)."""
    from harness.errors import HarnessError

    marker = request.node.get_closest_marker("shadow")
    if marker is None:
        pytest.fail(
            "the shadow fixture needs @pytest.mark.shadow(scenario=PATH) on the test", pytrace=False
        )
    spec = _spec(marker, request)
    runs_dir, reports_dir = _out(request.config, tmp_path_factory)
    cache = request.config.stash[_RUNS]
    try:
        if spec.baseline is not None:
            from harness.gates.baseline import resolve_baseline

            resolve_baseline(spec.baseline, baselines_dir=spec.baselines)  # before running
        done = cache.get(spec.run_key())
        if done is None:
            done = _execute(spec, runs_dir)
            cache[spec.run_key()] = done
            if reports_dir is not None:
                from harness.report.render import render_report

                render_report(done.run_dir, reports_dir / done.summary.run_id)
        report = _gate(spec, done)
    except HarnessError as exc:
        # Bad input (scenario, baseline, cassette): one clean line, reported as a test error
        # (``from None``, or pytest shows it twice: "During handling of ...").
        raise pytest.fail.Exception(f"harness: {exc}", pytrace=False) from None
    if reports_dir is not None:
        from harness.gates.output import publish

        # No GitHub annotations from here: pytest captures stdout, and a failing gate is
        # already a failing test (use pytest's --junitxml, or the gate cases in junit.xml).
        publish(report, reports_dir=reports_dir, env={})
    warned = request.config.stash.setdefault(_WARNINGS, [])
    warned.extend((request.node.nodeid, r) for r in report.results if r.status == "inconclusive")
    result = ShadowRun(done.run_dir, done.summary, report, reports_dir)
    if marker.kwargs.get("check", True):
        request.node.stash[_SHADOW] = result
    return result


def _gate(spec: _Spec, done: _Done) -> GateReport:
    from harness.gates.evaluate import gate_run

    return gate_run(
        done.run_dir,
        baseline=spec.baseline,
        config=_gate_config(spec, done.run_dir),
        baselines_dir=spec.baselines,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After a test body that passed, fail it if its shadow run failed a gate unchecked."""
    result = yield
    run = item.stash.get(_SHADOW, None)
    if run is not None and not run.checked:
        run.check()
    return result


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The runs, and every inconclusive gate as a warning line: those tests pass, and pytest's
    own summary ("1 passed", even with ``-rA``) would otherwise hide that nothing showed the
    value within its limit."""
    runs = config.stash.get(_RUNS, {})
    if not runs:
        return
    terminalreporter.section("shadow harness")
    for done in runs.values():
        terminalreporter.write_line(f"{done.summary.target_label}: {done.run_dir}")
        if done.summary.replay_label is not None:
            terminalreporter.write_line(f"  {done.summary.replay_label}")
        for warning in done.warnings:
            terminalreporter.write_line(f"  warning: {warning}", yellow=True)
    warned = config.stash.get(_WARNINGS, [])
    if warned:
        from harness.gates.output import warning_line

        terminalreporter.write_line(
            f"{len(warned)} inconclusive gate(s) — passed, with a warning:", yellow=True
        )
        for nodeid, r in warned:
            terminalreporter.write_line(f"warning: {nodeid}: {warning_line(r)}", yellow=True)
