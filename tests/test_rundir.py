"""The run directory (harness.rundir): one reader of observations.jsonl, the same errors for every
command, the scenario digest, and a report that reads the run once."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from harness.analysis.analyze import (
    SyntheticProfile,
    load_table,
    synthetic_observations,
    write_synthetic_run,
)
from harness.cli.app import main
from harness.errors import HarnessError
from harness.rundir import (
    META_FILE,
    OBSERVATIONS_FILE,
    SUMMARY_FILE,
    read_meta,
    read_observation_rows,
    read_observations,
    read_summary,
    scenario_changed,
    scenario_digest,
    write_meta,
)
from harness.scenario.load import load_scenario

HARNESS = [sys.executable, "-m", "harness"]


def _good(repeat: int = 0) -> str:
    obs = synthetic_observations(SyntheticProfile(), arms=("chat",), repeats=1, prompts=1, turns=1)
    return obs[0].model_copy(update={"repeat": repeat}).model_dump_json()


def _jsonl(tmp_path: Path, text: str) -> Path:
    path = tmp_path / OBSERVATIONS_FILE
    path.write_text(text, encoding="utf-8")
    return path


READERS: dict[str, Callable[[Path], object]] = {
    "rows": read_observation_rows,
    "records": lambda p: list(read_observations(p)),
    "columns": load_table,
}

BAD_LINES = [
    ("[1]", r"not an observation \(a JSON object expected, found list\)"),
    ("not json", r"not valid JSON .* — delete the line or rerun with --resume"),
    ("{}", r"schema_version None is not supported \(this harness reads 1\)"),
    ('{"schema_version": 99}', r"schema_version 99 is not supported"),
    ('"text"', r"not an observation \(a JSON object expected, found str\)"),
]


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_every_reader_names_file_and_line_of_a_bad_line(
    tmp_path: Path, reader: str, line: str, message: str
) -> None:
    path = _jsonl(tmp_path, f"{_good()}\n\n{line}\n{_good(1)}\n")  # line 3 (a blank line 2)
    with pytest.raises(HarnessError, match=rf"^{path}:3: {message}"):
        READERS[reader](path)


def test_a_record_that_does_not_validate_names_its_line(tmp_path: Path) -> None:
    """The column path does not validate per record; when the table cannot be built, the
    reader still points at the line (and the typed path finds the same line)."""
    path = _jsonl(tmp_path, f"{_good()}\n{_good(1)}\n" + '{"schema_version": 1}\n')
    for reader in ("records", "columns"):
        with pytest.raises(HarnessError, match=rf"^{path}:3: not a valid observation \(run_id"):
            READERS[reader](path)


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_torn_final_line_is_skipped_only_when_it_is_final_and_unterminated(
    tmp_path: Path, reader: str
) -> None:
    """A crash mid-write leaves a last line without newline; the resume redoes it."""
    torn = _good(1)[:40]
    rows = READERS[reader](_jsonl(tmp_path, f"{_good()}\n{torn}"))
    assert len(rows) == 1  # type: ignore[arg-type]
    for text, lineno in ((f"{_good()}\n{torn}\n", 2), (f"{torn}\n{_good()}\n", 1)):
        with pytest.raises(HarnessError, match=rf":{lineno}: not valid JSON"):
            READERS[reader](_jsonl(tmp_path, text))


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"cannot read observations"):
        read_observation_rows(tmp_path / OBSERVATIONS_FILE)


class _Doc(BaseModel):
    text: str


@pytest.mark.parametrize(
    ("recorded", "unrecorded", "changed"),
    [
        (scenario_digest(_Doc(text="a")), True, False),
        (scenario_digest(_Doc(text="b")), False, True),
        (None, True, True),
        (None, False, False),
        ("", True, True),
    ],
)
def test_scenario_changed(recorded: str | None, unrecorded: bool, changed: bool) -> None:
    assert scenario_changed(recorded, _Doc(text="a"), unrecorded=unrecorded) is changed


class _DocWithNewKey(BaseModel):
    """``_Doc`` after a release added an optional key."""

    text: str
    weight: int = 1
    reference: str | None = None


def test_a_value_set_to_its_default_still_counts(tmp_path: Path) -> None:
    # a prompt's `stream: true` over `defaults: {stream: false}` holds the field's default value,
    # yet removing it turns the prompt's requests from streamed to not streamed
    def digest(params: str) -> str:
        path = tmp_path / "s.yaml"
        path.write_text(
            "version: 1\nname: s\nmodel: gpt-4.1-mini\ndefaults: {stream: false}\n"
            f"prompts:\n  - id: a\n    input: Hi\n    params: {params}\n",
            encoding="utf-8",
        )
        return scenario_digest(load_scenario(path))

    assert digest("{stream: true, max_output_tokens: 64}") != digest("{max_output_tokens: 64}")
    assert digest("{temperature: null, max_output_tokens: 64}") != digest("{max_output_tokens: 64}")


def test_a_new_optional_key_keeps_the_digest() -> None:
    # every scenario holds a new key at its default: recorded runs and cassettes stay current
    assert scenario_digest(_DocWithNewKey(text="a")) == scenario_digest(_Doc(text="a"))
    assert scenario_digest(_DocWithNewKey(text="a", weight=3)) != scenario_digest(_Doc(text="a"))


# --- through the CLI ---------------------------------------------------------------------------


def _synthetic_run(run_dir: Path) -> Path:
    obs = synthetic_observations(SyntheticProfile(), arms=("chat", "responses"), repeats=2)
    return write_synthetic_run(run_dir, obs)


def _resumable_run(tmp_path: Path) -> Path:
    """A run directory `harness run --resume` accepts up to reading the observations."""
    from harness.records import RunMeta

    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(
        "version: 1\nname: tiny\nmodel: gpt-4.1-mini\narms: [chat, responses]\nrepeats: 1\n"
        "prompts:\n  - id: hi\n    input: Hello\n",
        encoding="utf-8",
    )
    digest = scenario_digest(load_scenario(scenario))
    run_dir = tmp_path / "runs" / "tiny-run"
    run_dir.mkdir(parents=True)
    write_meta(
        run_dir,
        RunMeta(
            run_id="tiny-run",
            created_at=1.78e9,
            seed=1,
            target="emulator",
            is_emulator=True,
            emulator_profile="parity",
            scenarios=[{"name": "tiny", "path": str(scenario), "sha256": digest, "repeats": 1}],
        ),
    )
    (run_dir / OBSERVATIONS_FILE).write_text("", encoding="utf-8")
    return run_dir


COMMANDS: dict[str, tuple[Callable[[Path], Path], Callable[[Path], list[str]]]] = {
    "run --resume": (_resumable_run, lambda d: ["run", "--resume", str(d), "--quiet"]),
    "analyze": (lambda t: _synthetic_run(t / "run"), lambda d: ["analyze", str(d)]),
    "report": (
        lambda t: _synthetic_run(t / "run"),
        lambda d: ["report", str(d), "--out", str(d.parent / "report")],
    ),
    "gate": (lambda t: _synthetic_run(t / "run"), lambda d: ["gate", str(d)]),
}


def _with_bad_line(tmp_path: Path, command: str, bad: str) -> tuple[Path, Path, int]:
    """The command's run directory with ``bad`` appended to its observations: (run, file, line)."""
    run_dir = COMMANDS[command][0](tmp_path)
    path = run_dir / OBSERVATIONS_FILE
    with path.open("a", encoding="utf-8") as fh:
        fh.write(bad + "\n")
    return run_dir, path, len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("bad", ["[1]", '{"schema_version": 1, "run_id": "x"}'])
def test_commands_report_a_bad_line_as_one_line(
    tmp_path: Path,
    command: str,
    bad: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # in-process (an exception escaping main() fails the test); the process's own exit status
    # and stderr are checked once below
    run_dir, path, lineno = _with_bad_line(tmp_path, command, bad)
    monkeypatch.chdir(tmp_path)
    assert main(COMMANDS[command][1](run_dir)) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert f"{path}:{lineno}: not " in lines[0]
    assert not (run_dir / SUMMARY_FILE).exists()


def test_a_bad_line_exits_2_with_one_line_from_the_process(tmp_path: Path) -> None:
    run_dir, path, lineno = _with_bad_line(tmp_path, "run --resume", "[1]")
    done = subprocess.run(
        [*HARNESS, *COMMANDS["run --resume"][1](run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{path}:{lineno}: not " in lines[0]
    assert not (run_dir / SUMMARY_FILE).exists()


def test_analysis_report_and_gates_import_neither_the_runner_nor_the_sdk() -> None:
    code = (
        "import sys, harness.analysis.analyze, harness.report.data, harness.gates.config, "
        "harness.gates.evaluate; print(sorted(m for m in sys.modules if m.startswith("
        "('openai', 'httpx2', 'harness.runner.execute'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


# --- a report reads the run once ----------------------------------------------------------------


def test_report_reads_the_run_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Observations parsed once, meta.json read once, shards merged once — on the way
    analyse → render of a (shadow-style, sharded) run without a summary."""
    import harness.shadow.store as store
    from harness.report import render_report

    run_dir = _synthetic_run(tmp_path / "run")
    (run_dir / OBSERVATIONS_FILE).rename(run_dir / "observations-host-1-0.jsonl")
    reads: Counter[str] = Counter()
    original_open = pathlib.Path.open

    def counting_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "r" in mode:  # read_bytes and read_text open through here too
            reads[self.name] += 1
        return original_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", counting_open)
    merges: list[Path] = []
    merge = store.merge_shards
    monkeypatch.setattr(store, "merge_shards", lambda d, **kw: merges.append(d) or merge(d, **kw))

    render_report(run_dir, tmp_path / "report")

    assert (run_dir / SUMMARY_FILE).is_file()  # analysed on the way
    assert reads[OBSERVATIONS_FILE] == 1
    assert reads[META_FILE] == 1
    assert merges == [run_dir]


@pytest.mark.parametrize("name", ["meta.json", "summary.json"])
def test_a_file_that_is_not_utf8_is_one_line_not_a_traceback(name: str, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(b"\xff\xfe{}")
    with pytest.raises(HarnessError, match=rf"{name}: cannot read .*utf-8"):
        if name == "meta.json":
            read_meta(tmp_path)
        else:
            read_summary(tmp_path)
