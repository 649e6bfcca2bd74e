"""`harness validate`: every malformed fixture gives exactly one clean line and exit status 2."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli.app import main
from harness.scenario.yaml_safe import MAX_FILE_BYTES

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
BAD = REPO / "tests" / "fixtures" / "bad_scenarios"
LINE_RE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+): (?P<field>[^:]+?): (?P<message>.+) — "
    r"(?P<fix>.+)$"
)

# fixture → (line, field, words the message or fix must contain)
CASES: dict[str, tuple[int, str, str]] = {
    "yaml_syntax.yaml": (5, "(yaml)", "invalid YAML"),
    "yaml_tabs.yaml": (6, "(yaml)", "tabs"),
    "not_utf8.yaml": (4, "(file)", "not UTF-8"),
    "null_byte.yaml": (4, "(yaml)", "U+0000"),
    "multi_document.yaml": (7, "(yaml)", "more than one YAML document"),
    "python_tag.yaml": (4, "description", "unsupported tag !!python/object/apply"),
    "alias_bomb.yaml": (6, "(yaml)", "aliases count once per use"),
    "alias_recursive.yaml": (5, "(yaml)", "refers to itself"),
    "deep_nesting.yaml": (7, "(yaml)", "nesting deeper than 64"),
    "empty_file.yaml": (1, "(top level)", "the file is empty"),
    "top_level_list.yaml": (1, "(top level)", "mapping of keys, got a list"),
    "dup_key_top.yaml": (4, "model", "duplicate key model"),
    "dup_key_prompt.yaml": (7, "prompts[0].input", "duplicate key input"),
    "unknown_top_key.yaml": (4, "repeat", "did you mean repeats?"),
    "unknown_param.yaml": (5, "defaults.temprature", "did you mean temperature?"),
    "missing_version.yaml": (1, "version", "add version: 1"),
    "wrong_version.yaml": (1, "version", "unsupported scenario version 2"),
    "missing_prompts.yaml": (1, "prompts", "required key prompts is missing"),
    "empty_prompts.yaml": (4, "prompts", "must not be empty"),
    "repeats_type.yaml": (4, "repeats", "expected a whole number, got 'many'"),
    "repeats_zero.yaml": (4, "repeats", "must be ≥ 1"),
    "arm_unknown.yaml": (4, "arms[1]", "unknown arm completions"),
    "arm_replicate_one.yaml": (4, "arms[1]", "replicates start at #2"),
    "arm_replicate_no_base.yaml": (4, "arms[1]", "add chat to arms"),
    "arm_duplicate.yaml": (4, "arms[2]", "listed twice"),
    "arm_variant_unknown.yaml": (4, "arms[1]", "responses_chained has no variant store"),
    "arm_variant_replicate_no_base.yaml": (4, "arms[2]", "add responses+store to arms"),
    "param_n.yaml": (5, "defaults.n", "exactly one output per request"),
    "param_stop.yaml": (8, "prompts[0].params.stop", "no stop sequences"),
    "param_logit_bias.yaml": (5, "defaults.logit_bias", "no logit_bias"),
    "param_max_tokens.yaml": (5, "defaults.max_tokens", "write max_output_tokens"),
    "param_on_prompt.yaml": (7, "prompts[0].temperature", "move it under params"),
    "temperature_reasoning.yaml": (5, "defaults.temperature", "reasoning model"),
    "effort_non_reasoning.yaml": (5, "defaults.reasoning_effort", "does not accept"),
    "chained_store_false.yaml": (6, "defaults.store", "responses_chained needs store: true"),
    "background_no_store.yaml": (5, "background", "set defaults: {store: true}"),
    "background_store_false.yaml": (7, "defaults.store", "background: true needs store: true"),
    "background_prompt_store_false.yaml": (
        10,
        "prompts[0].params.store",
        "background: true needs store: true",
    ),
    "store_variant_store_false.yaml": (
        6,
        "defaults.store",
        "responses+store sends store: true, which contradicts store: false",
    ),
    "max_output_tokens_small.yaml": (5, "defaults.max_output_tokens", "below 16"),
    "responses_only_model.yaml": (3, "model", "Responses API only"),
    "metadata_not_string.yaml": (5, "defaults.metadata.tier", "expected a string, got 2"),
    "include_missing.yaml": (4, "system", "file not found"),
    "include_absolute.yaml": (4, "system", "absolute !include path"),
    "include_directory.yaml": (4, "system", "is a directory"),
    "input_and_turns.yaml": (7, "prompts[0].turns", "both input and turns"),
    "no_input.yaml": (5, "prompts[0]", "neither input nor turns"),
    "empty_turns.yaml": (6, "prompts[0].turns", "must not be empty"),
    "empty_input.yaml": (6, "prompts[0].input", "text is empty"),
    "prompt_id_duplicate.yaml": (7, "prompts[1].id", "used twice"),
    "prompt_id_bad.yaml": (5, "prompts[0].id", "not a slug"),
    "parts_plain_strings.yaml": (8, "prompts[0].input[1]", "plain string"),
    "image_bad_url.yaml": (8, "prompts[0].input[1].image_url", "not an http(s) URL"),
    "image_bad_detail.yaml": (
        8,
        "prompts[0].input[1].detail",
        "use one of: low, high, auto or original",
    ),
    "image_bad_base64.yaml": (8, "prompts[0].input[1].image_url", "not valid base64"),
    "tool_results_unknown.yaml": (8, "prompts[0].tool_results.get_time", "not a tool"),
    "tool_result_missing.yaml": (8, "prompts[0].tool_results", "no canned result for get_time"),
    "tool_choice_unknown.yaml": (8, "prompts[0].tool_choice", "not a tool of this prompt"),
    "tool_nested_form.yaml": (8, "prompts[0].tools[0].type", "written flat"),
    "schema_strict_not_required.yaml": (9, "prompts[0].output_schema.schema", "missing: age"),
    "schema_invalid.yaml": (
        13,
        "prompts[0].output_schema.schema.properties.name.type",
        "not a valid JSON Schema",
    ),
    "output_both.yaml": (7, "prompts[0].output", "both output_schema and output"),
    "json_object_no_json_word.yaml": (7, "prompts[0].output", "word JSON"),
    "gate_unknown_metric.yaml": (
        8,
        'gates["responses_vs_chat.ttft_median_ratio_max"]',
        "unknown gate metric",
    ),
    "gate_arm_absent.yaml": (
        8,
        'gates["responses_chained_vs_chat.ttft_p50_ratio_max"]',
        "not in arms",
    ),
    "gate_bad_key.yaml": (8, "gates.ttft", "is not <arm>_vs_<arm>"),
    "gate_wrong_scope.yaml": (
        8,
        'gates["responses_vs_chat.error_rate_max"]',
        "write <arm>.error_rate_max",
    ),
    "gate_value_type.yaml": (8, 'gates["responses_vs_chat.cost_ratio_max"]', "expected a number"),
    "cache_isolation_bad.yaml": (4, "cache_isolation", "use one of: conversation, arm"),
    "similarity_bad_method.yaml": (4, "similarity.method[1]", "bleu is not allowed"),
}

#: Problems reported in a file other than the one validated (the included file).
OTHER_FILE = {"include_not_utf8.yaml": (BAD / "prompts" / "latin1.md", 1, "(file)", "not UTF-8")}


def _run(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, list[str], str]:
    code = main(["validate", *(str(p) for p in paths)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_every_fixture_has_a_case() -> None:
    on_disk = {p.name for p in BAD.glob("*.yaml")}
    assert on_disk == set(CASES) | set(OTHER_FILE)
    assert len(on_disk) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_fixture_gives_one_clean_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    line_no, field, words = CASES[name]
    path = BAD / name
    started = time.perf_counter()
    code, lines, err = _run(capsys, path)
    elapsed = time.perf_counter() - started

    assert code == 2
    assert err == ""
    assert len(lines) == 1, lines
    match = LINE_RE.match(lines[0])
    assert match, lines[0]
    assert match["file"] == path.as_posix()
    assert int(match["line"]) == line_no, lines[0]
    assert match["field"] == field, lines[0]
    assert words in f"{match['message']} — {match['fix']}", lines[0]
    assert "Traceback" not in lines[0]
    assert elapsed < 1.0


@pytest.mark.parametrize("name", sorted(OTHER_FILE))
def test_problem_in_included_file_names_that_file(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    where, line_no, field, words = OTHER_FILE[name]
    code, lines, _ = _run(capsys, BAD / name)
    assert code == 2
    assert len(lines) == 1
    match = LINE_RE.match(lines[0])
    assert match, lines[0]
    assert (match["file"], int(match["line"]), match["field"]) == (where.as_posix(), line_no, field)
    assert words in match["message"]


def test_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = _run(capsys, SCENARIOS)
    assert code == 0, lines
    # support_bot sends metadata: valid, with the migration finding that chat drops it
    support_bot = (SCENARIOS / "support_bot.yaml").as_posix()
    assert lines[0].startswith(
        f"{support_bot}:20: prompts[0] (and 2 more prompts): note: chat: metadata: "
    )
    assert lines[1:] == [f"{len(list(SCENARIOS.glob('*.yaml')))} scenario file(s) valid"]


def test_mixed_paths_report_only_the_bad_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = _run(capsys, SCENARIOS / "quickstart.yaml", BAD / "repeats_zero.yaml")
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"{(BAD / 'repeats_zero.yaml').as_posix()}:4:")


def test_several_problems_one_line_each_in_line_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "version: 1\nname: many\nmodel: gpt-4.1-mini\nrepeats: 0\n"
        "cache_isolation: prompt\nprompts:\n  - id: p\n    input: Hi\n"
        "gates:\n  responses_vs_chat.ttft_p50_ratio_max: soon\n"
    )
    code, lines, _ = _run(capsys, path)
    assert code == 2
    assert [int(LINE_RE.match(line)["line"]) for line in lines] == [4, 5, 10]  # type: ignore[index]


def test_unknown_keys_at_every_level_and_other_problems_in_one_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typos.yaml"
    path.write_text(
        "version: 1\nname: typos\nmodle: gpt-4.1-mini\n"
        "defaults: {temprature: 0, max_output_tokens: 64}\nrepeats: 0\nprompts:\n"
        "  - id: a\n    inptu: hi\n  - id: b\n    input: x\n    params: {top_pp: 1}\n"
    )
    code, lines, _ = _run(capsys, path)
    assert code == 2
    shown = path.as_posix()
    assert lines == [
        f"{shown}:3: modle: unknown key modle — did you mean model?",
        f"{shown}:4: defaults.temprature: unknown key temprature — did you mean temperature?",
        f"{shown}:5: repeats: 0 is out of range (must be ≥ 1) — use a value ≥ 1",
        f"{shown}:8: prompts[0].inptu: unknown key inptu — did you mean input?",
        f"{shown}:11: prompts[1].params.top_pp: unknown key top_pp — did you mean top_p?",
    ]


def test_huge_file_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("version: 1\ndescription: '" + "x" * MAX_FILE_BYTES + "'\n")
    started = time.perf_counter()
    code, lines, _ = _run(capsys, path)
    assert time.perf_counter() - started < 1.0
    assert code == 2
    assert len(lines) == 1 and "over the 2,097,152-byte limit" in lines[0]


def test_many_aliases_fail_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text("a: &a x\nb: [" + ", ".join(["*a"] * 5000) + "]\n")
    started = time.perf_counter()
    code, lines, _ = _run(capsys, path)
    assert time.perf_counter() - started < 1.0
    assert code == 2 and len(lines) == 1 and "more than 100 aliases" in lines[0]


def test_missing_path_and_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = _run(capsys, tmp_path / "nope.yaml", tmp_path)
    assert code == 2
    assert lines == [
        f"{(tmp_path / 'nope.yaml').as_posix()}:1: (file): file not found — check the path",
        f"{tmp_path.as_posix()}:1: (file): no *.yaml or *.yml files in this directory — name "
        "scenario files or a directory holding them",
    ]


def test_included_yaml_is_not_validated_as_a_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "schema.yaml").write_text(
        "type: object\nproperties: {a: {type: string}}\nrequired: [a]\n"
        "additionalProperties: false\n"
    )
    (tmp_path / "s.yaml").write_text(
        "version: 1\nname: s\nmodel: gpt-4.1-mini\nprompts:\n  - id: p\n    input: Hi\n"
        "    output_schema: {name: a, schema: !include schema.yaml}\n"
    )
    code, lines, _ = _run(capsys, tmp_path)
    assert (code, lines) == (0, ["1 scenario file(s) valid"])


@pytest.mark.parametrize(
    ("args", "code", "expect"),
    [
        (["scenarios/quickstart.yaml"], 0, "scenario file(s) valid"),
        (["tests/fixtures/bad_scenarios/alias_bomb.yaml"], 2, "alias_bomb.yaml:6: (yaml): "),
        (["tests/fixtures/bad_scenarios/not_utf8.yaml"], 2, "not_utf8.yaml:4: (file): not UTF-8"),
    ],
)
def test_subprocess(args: list[str], code: int, expect: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "validate", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == code
    assert expect in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(proc.stdout.splitlines()) == 1


def test_validate_notes_what_the_translation_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "version: 1\nname: t\nmodel: gpt-4.1-mini\nsystem: Reply in JSON.\n"
        "prompts:\n  - id: p\n    input: Who won?\n    output: json_object\n"
    )
    assert main(["validate", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        f"{path.as_posix()}:6: prompts[0]: note: responses: text.format: json_object needs "
        "the word JSON in an input message"
    )
    assert lines[1:] == ["1 scenario file(s) valid"]


def test_validate_and_plan_warn_about_a_model_nobody_knows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("version: 1\nname: typo\nmodel: gpt-4o-mni\nprompts:\n  - {id: a, input: hi}\n")
    warning = (
        f"{path}:3: model: warning: model 'gpt-4o-mni' is unknown to the price list — did you "
        "mean gpt-4o-mini"
    )
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(warning) and out.endswith("1 scenario file(s) valid\n")
    assert main(["plan", str(path)]) == 0
    assert warning in capsys.readouterr().out
    path.write_text(path.read_text().replace("gpt-4o-mni", "gpt-4o-mini"))
    assert main(["validate", str(path)]) == 0
    assert "warning" not in capsys.readouterr().out
