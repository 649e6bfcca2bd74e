"""``harness run --replay`` checks its cassettes against the plan first, and every output of a
replay says it is one (issue 19, symptoms 3 and 6)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness.cassettes.files import CassetteMeta, rerecord_command
from harness.cli.app import main
from harness.records import ReplayedCassette, replay_label

TINY = """\
version: 1
name: tiny
model: gpt-4.1-mini
arms: [chat, responses]
repeats: 2
system: You are terse.
prompts:
  - id: a
    input: Hello there
gates:
  chat.error_rate_max: 0.05
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.yaml recorded into cassettes/ (zero profile, time scale 0.5, seed 4)."""
    root = tmp_path_factory.mktemp("recorded")
    (root / "tiny.yaml").write_text(TINY, encoding="utf-8")
    argv = ["run", str(root / "tiny.yaml"), "--record", str(root / "cassettes"), "--seed", "4"]
    argv += ["--emulator-profile", "zero", "--emulator-time-scale", "0.5", "--quiet"]
    assert main([*argv, "--out", str(root / "record-runs")]) == 0
    return root


@pytest.fixture
def project(recorded: Path, tmp_path: Path) -> Path:
    """A copy of the recorded scenario and cassettes that a test may edit."""
    shutil.copy(recorded / "tiny.yaml", tmp_path / "tiny.yaml")
    shutil.copytree(recorded / "cassettes", tmp_path / "cassettes")
    return tmp_path


def _replay(project: Path, *extra: str) -> int:
    argv = ["run", str(project / "tiny.yaml"), "--replay", str(project / "cassettes")]
    return main([*argv, "--quiet", "--out", str(project / "runs"), *extra])


def _edit(project: Path) -> None:
    scenario = project / "tiny.yaml"
    scenario.write_text(scenario.read_text().replace("Hello there", "Hello again"))


def _runs(project: Path) -> list[Path]:
    return sorted((project / "runs").iterdir()) if (project / "runs").exists() else []


# --- the check before a replay -----------------------------------------------------------------


def test_a_stale_cassette_stops_the_replay_naming_it_and_the_command_that_rerecords(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(project)
    assert _replay(project) == 2
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    cassette = project / "cassettes" / "tiny.yaml"
    assert f"{cassette}: stale: scenario changed since recording" in line
    # every request of the edited prompt misses: a few by name, and the count
    assert "4 request(s) have no recorded interaction (tiny/a/" in line
    assert line.count("tiny/a/") == 3 and "… 1 more" in line
    rerecord = (
        f"harness run {project / 'tiny.yaml'} --record {project / 'cassettes'} --seed 4 "
        "--emulator-profile zero --emulator-time-scale 0.5"
    )
    assert f"re-record with: {rerecord}" in line
    assert "--allow-stale" in line and "Traceback" not in captured.err
    assert _runs(project) == []  # refused before the run started: no run directory


def test_requests_the_cassette_lacks_stop_the_replay_even_when_the_scenario_is_unchanged(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _replay(project, "--repeats", "3") == 2  # recorded with 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "stale:" not in line
    assert "2 request(s) have no recorded interaction (tiny/a/" in line
    assert "/r3 turn 1" in line and "more" not in line


def test_allow_stale_replays_with_a_warning_and_the_gate_says_re_record(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(project)
    assert _replay(project, "--allow-stale", "--gate") == 1  # the error-rate gate fails
    captured = capsys.readouterr()
    assert "warning: cassettes lack requests of the plan, replaying anyway (--allow-stale)" in (
        captured.err
    )
    [next_line] = [x for x in captured.out.splitlines() if x.strip().startswith("next:")]
    assert "2 request(s) had no recorded interaction (cassette_miss)" in next_line
    assert f"re-record it with: harness run {project / 'tiny.yaml'} --record" in next_line
    assert "change chat.error_rate_max" not in next_line


def test_a_stale_cassette_holding_every_request_replays_with_a_warning(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = project / "tiny.yaml"
    # a gate sends nothing: the digest changes, every request is still recorded
    scenario.write_text(
        scenario.read_text().replace("chat.error_rate_max: 0.05", "chat.ttft_p50_ms_max: 0")
    )
    assert _replay(project, "--gate") == 1  # the impossible gate fails; the replay ran
    captured = capsys.readouterr()
    [warning] = [x for x in captured.err.splitlines() if "warning:" in x]
    assert f"{project / 'cassettes' / 'tiny.yaml'}: stale: scenario changed" in warning
    assert "but every request of the plan is recorded" in warning
    assert f"refresh it with: harness run {project / 'tiny.yaml'} --record" in warning
    # and a threshold failure without misses still points at the threshold
    [next_line] = [x for x in captured.out.splitlines() if x.strip().startswith("next:")]
    assert "change chat.ttft_p50_ms_max" in next_line and "re-record" not in next_line


def test_allow_stale_needs_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY, encoding="utf-8")
    code = main(["run", str(tmp_path / "tiny.yaml"), "--allow-stale", "--out", str(tmp_path)])
    assert code == 2
    assert "--allow-stale is for --replay DIR" in capsys.readouterr().err


def test_a_directory_with_record_sh_names_it_as_the_command(project: Path) -> None:
    cassettes = project / "cassettes"
    metadata = yaml.safe_load((cassettes / "tiny.yaml").read_text())["metadata"]
    meta = CassetteMeta.model_validate(metadata)
    assert rerecord_command(cassettes, meta).startswith("harness run ")
    (cassettes / "record.sh").write_text("#!/bin/sh\n", encoding="utf-8")
    assert rerecord_command(cassettes, meta) == f"bash {cassettes / 'record.sh'}"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "--seed 4 --repeats 2 --emulator-profile zero --emulator-time-scale 0.5"),
        ({"emulator_time_scale": 1.0}, "--seed 4 --repeats 2 --emulator-profile zero"),
        (
            {"emulator_seed": 3, "client": "raw"},
            "--seed 4 --repeats 2 --emulator-profile zero --emulator-seed 3 "
            "--emulator-time-scale 0.5 --client raw",
        ),
        (
            {"target": "openai", "is_emulator": False, "emulator_profile": None},
            "--seed 4 --repeats 2 --target openai",
        ),
    ],
)
def test_the_rerecord_command_repeats_how_the_cassette_was_recorded(
    changes: dict[str, object], expected: str, tmp_path: Path
) -> None:
    meta = CassetteMeta(
        recorded_from="emulator (not OpenAI)",
        label="emulator",
        target="emulator",
        is_emulator=True,
        emulator_profile="zero",
        emulator_seed=0,
        emulator_time_scale=0.5,
        seed=4,
        repeats=2,
        harness_version="0",
        recorded_at="2026-12-07T22:16:59Z",
        run_id="r",
        scenario="tiny",
        scenario_path="scenarios/tiny.yaml",
        scenario_sha256="0" * 64,
    ).model_copy(update=changes)
    # the whole command: a flag too many (time scale 1, seed 0, --target beside the emulator's
    # own flags) records differently, or not at all
    assert rerecord_command(tmp_path, meta) == (
        f"harness run scenarios/tiny.yaml --record {tmp_path} {expected}"
    )


# --- every output of a replay says so ----------------------------------------------------------


@pytest.fixture(scope="module")
def replayed(recorded: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A replay of the fresh cassette: its run directory, its terminal output, its label."""
    out = tmp_path_factory.mktemp("replayed")
    buffer = io.StringIO()  # capsys is function-scoped; this run is shared by the module
    with contextlib.redirect_stdout(buffer):
        argv = ["run", str(recorded / "tiny.yaml"), "--replay", str(recorded / "cassettes")]
        assert main([*argv, "--quiet", "--out", str(out / "runs"), "--gate"]) == 0
    [run_dir] = (out / "runs").iterdir()
    recorded_at = yaml.safe_load((recorded / "cassettes" / "tiny.yaml").read_text())["metadata"][
        "recorded_at"
    ]
    when = recorded_at.replace("T", " ")[:16] + " UTC"
    label = (
        f"replay of {recorded / 'cassettes' / 'tiny.yaml'}, recorded {when} against "
        "emulator — not OpenAI (profile zero, time scale 0.5, 2 repeats)"
    )
    return run_dir, buffer.getvalue(), label


def test_the_terminal_says_replay_of_the_cassette(replayed: tuple[Path, str, str]) -> None:
    _, out, label = replayed
    lines = [" ".join(x.split()) for x in out.splitlines()]
    assert lines.count(label) == 2  # the end-of-run table, and the gate report


def test_analyze_and_gate_say_replay_of(
    replayed: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, _, label = replayed
    assert main(["analyze", str(run_dir), "--resamples", "200"]) == 0
    assert label in " ".join(capsys.readouterr().out.split())
    assert main(["gate", str(run_dir)]) == 0
    assert label in capsys.readouterr().out.splitlines()[1]


def test_summary_json_and_meta_record_the_cassette(replayed: tuple[Path, str, str]) -> None:
    run_dir, _, _ = replayed
    [summary] = json.loads((run_dir / "summary.json").read_text())["replay"]
    [meta] = json.loads((run_dir / "meta.json").read_text())["replay"]
    assert summary == meta
    assert summary["scenario"] == "tiny" and summary["cassette"].endswith("cassettes/tiny.yaml")
    assert (summary["emulator_profile"], summary["emulator_time_scale"]) == ("zero", 0.5)
    assert (summary["repeats"], summary["seed"], summary["is_emulator"]) == (2, 4, True)
    assert summary["rerecord"].startswith("harness run ")


def test_summary_md_report_banner_and_junit_say_replay_of(
    replayed: tuple[Path, str, str],
) -> None:
    run_dir, _, label = replayed
    reports = run_dir.parent.parent / "reports" / run_dir.name
    assert f"This run is a **{label}**" in (reports / "summary.md").read_text()
    html = (reports / "report.html").read_text()
    start = html.index('id="replay-banner"')
    banner = html[start : html.index("</div>", start)]
    assert label in " ".join(banner.split())
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["replay"] == label


def test_a_live_run_says_no_replay(recorded: Path) -> None:
    [run_dir] = (recorded / "record-runs").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["replay"] == []
    reports = run_dir.parent.parent / "reports" / run_dir.name
    assert "replay of" not in (reports / "summary.md").read_text()
    assert 'id="replay-banner"' not in (reports / "report.html").read_text()
    assert "replay" not in (reports / "junit.xml").read_text()


# --- the shipped cassettes say how they were recorded (symptom 6) -------------------------------

REPO = Path(__file__).resolve().parents[2]


def _readme_table() -> dict[str, tuple[int, int, int]]:
    """cassettes/README.md's table: scenario → (repeats recorded, scenario's, per arm)."""
    rows = {}
    for line in (REPO / "cassettes" / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1].isdigit():
            rows[cells[0]] = (int(cells[1]), int(cells[2]), int(cells[3]))
    return rows


#: shipped cassettes recorded below the minimum for verdicts, each with its reason (also in
#: cassettes/README.md): the agent loop's seven state arms echo a long system prompt on every
#: turn, ~1.9 MB a repeat, so 10 conversations would take ~19 MB — a replay shows its per-turn
#: conversation-state figures, not verdicts
BELOW_MINIMUM = {"agent-tool-loop"}


def test_shipped_cassettes_record_profile_time_scale_and_repeats_as_documented() -> None:
    from harness.analysis.decide import MIN_CONVERSATIONS
    from harness.scenario.load import load_scenario

    table = _readme_table()
    seen = set()
    for path in sorted((REPO / "cassettes").glob("*.yaml")):
        meta = CassetteMeta.model_validate(yaml.safe_load(path.read_text())["metadata"])
        scenario = load_scenario(REPO / meta.scenario_path)
        # the emulator's own speed: a replay shows what a live run against it measures
        assert (meta.emulator_profile, meta.emulator_time_scale) == ("parity", 1.0), path
        assert meta.repeats is not None
        if meta.scenario not in BELOW_MINIMUM:
            assert meta.repeats * len(scenario.prompts) >= MIN_CONVERSATIONS, path
        assert table[meta.scenario] == (
            meta.repeats,
            scenario.repeats,
            meta.repeats * len(scenario.prompts),
        ), f"cassettes/README.md's row for {meta.scenario} is not how {path.name} was recorded"
        seen.add(meta.scenario)
    assert seen == set(table)
    quickstart = CassetteMeta.model_validate(
        yaml.safe_load((REPO / "cassettes" / "quickstart.yaml").read_text())["metadata"]
    )
    assert quickstart.repeats == load_scenario(REPO / "scenarios" / "quickstart.yaml").repeats


def _source(scenario: str, **changes: object) -> ReplayedCassette:
    fields: dict[str, object] = {
        "scenario": scenario,
        "cassette": f"cassettes/{scenario}.yaml",
        "recorded_at": "2026-12-07T22:16:59Z",
        "target": "emulator",
        "is_emulator": True,
        "emulator_profile": "parity",
        "emulator_time_scale": 1.0,
        "repeats": 5,
        "seed": 1,
        "rerecord": "bash cassettes/record.sh",
    }
    return ReplayedCassette.model_validate({**fields, **changes})


@pytest.mark.parametrize(
    ("sources", "label"),
    [
        ([], None),
        (
            [_source("a")],
            "replay of cassettes/a.yaml, recorded 2026-12-07 22:16 UTC against "
            "emulator — not OpenAI (profile parity, time scale 1, 5 repeats)",
        ),
        (
            [
                _source(
                    "a",
                    target="openai",
                    is_emulator=False,
                    emulator_profile=None,
                    emulator_time_scale=None,
                    repeats=None,
                )
            ],
            "replay of cassettes/a.yaml, recorded 2026-12-07 22:16 UTC against openai",
        ),
        (
            [_source("a"), _source("b", repeats=3, recorded_at="2026-12-07T22:30:00Z")],
            "replay of 2 cassettes in cassettes/ (a, b), recorded 2026-12-07 22:16 UTC – "
            "2026-12-07 22:30 UTC against emulator — not OpenAI (profile parity, time scale 1, "
            "3–5 repeats)",
        ),
        (
            [_source("a"), _source("b", emulator_time_scale=0.2)],
            "replay of cassettes/a.yaml, recorded 2026-12-07 22:16 UTC against emulator — not "
            "OpenAI (profile parity, time scale 1, 5 repeats); replay of cassettes/b.yaml, "
            "recorded 2026-12-07 22:16 UTC against emulator — not OpenAI (profile parity, time "
            "scale 0.2, 5 repeats)",
        ),
    ],
)
def test_replay_label(sources: list[ReplayedCassette], label: str | None) -> None:
    assert replay_label(sources) == label
