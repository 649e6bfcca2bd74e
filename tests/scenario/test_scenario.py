"""Scenario loading: the YAML layer (lines, includes, limits), the models and the rules."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario.load import (
    GATE_METRICS,
    Scenario,
    ScenarioParams,
    load_scenario,
    split_reason,
    validate_paths,
)
from harness.scenario.yaml_safe import (
    MAX_INCLUDE_DEPTH,
    YamlProblem,
    format_path,
    load_yaml,
)
from harness.translate.convert import UNMAPPABLE_CHAT_PARAMS
from harness.translate.request import Params
from harness.translate.tokens import count_text_tokens

# bpe-openai (harness.translate.tokens) loads its tables with a deprecated importlib.resources call.

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
HEAD = "version: 1\nname: t\nmodel: gpt-4.1-mini\n"
PROMPT = "prompts:\n  - id: p\n    input: Hello\n"


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    return [line.split(": ", 1)[1] for line in info.value.problems]  # drop "file:line"


# --- the examples --------------------------------------------------------------------------------


EXAMPLES = sorted(SCENARIOS.glob("*.yaml"))


def test_at_least_six_examples_with_readme() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "quickstart",
        "support_bot",
        "structured_extraction",
        "function_calling",
        "image_question",
        "batch_summarization",
    } <= names
    assert (SCENARIOS / "README.md").is_file()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.source == path
    assert len(scenario.sha256) == 64
    assert scenario.prompts


def test_quickstart_is_small_and_cacheable() -> None:
    sc = load_scenario(SCENARIOS / "quickstart.yaml")
    assert sc.arms == ["chat", "chat#2", "responses"]
    assert (len(sc.prompts), sc.repeats) == (2, 5)
    assert sc.system is not None and count_text_tokens(sc.system, sc.model) >= 1024
    assert sc.files[1].name == "quickstart_system.md"  # through !include


def test_support_bot_has_long_system_prompt_and_three_turns() -> None:
    sc = load_scenario(SCENARIOS / "support_bot.yaml")
    assert sc.system is not None and count_text_tokens(sc.system, sc.model) >= 1024
    assert all(p.turns is not None and len(p.turns) == 3 for p in sc.prompts)
    assert "responses_chained" in sc.arms


def test_feature_examples() -> None:
    extraction = load_scenario(SCENARIOS / "structured_extraction.yaml")
    schema = extraction.prompts[0].output_schema
    assert schema is not None and schema.strict and schema.json_schema["type"] == "object"
    assert extraction.prompts[1].output_schema == schema  # shared through a YAML anchor

    tools = load_scenario(SCENARIOS / "function_calling.yaml").prompts[0]
    assert tools.tools and tools.tool_results
    assert json.loads(tools.tool_results["get_order_status"])["status"] == "shipped"

    image = load_scenario(SCENARIOS / "image_question.yaml").prompts[0]
    assert isinstance(image.input, list)
    assert image.input[1].image_url.startswith("data:image/png;base64,")  # type: ignore[union-attr]

    batch = load_scenario(SCENARIOS / "batch_summarization.yaml")
    assert len(batch.prompts) >= 3 and batch.defaults.temperature is None


# --- YAML layer ----------------------------------------------------------------------------------


def test_lines_of_keys_and_items(tmp_path: Path) -> None:
    loaded = load_yaml(write(tmp_path, "a: 1\nb:\n  - x\n  - {c: 2}\n"))
    assert loaded.data == {"a": 1, "b": ["x", {"c": 2}]}
    assert {p: loc.line for p, loc in loaded.lines.items()} == {
        (): 1,
        ("a",): 1,
        ("b",): 2,
        ("b", 0): 3,
        ("b", 1): 4,
        ("b", 1, "c"): 4,
    }
    assert loaded.location(("b", 1, "missing")).line == 4


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("v: no", "no"),  # YAML 1.2 booleans: "no"/"on" stay text (prompts are text)
        ("v: on", "on"),
        ("v: true", True),
        ("v: 2024-05-01", "2024-05-01"),  # no datetime objects
        ("v: 1.5", 1.5),
        ("v: 7", 7),
        ("v: ~", None),
        ("v: '0.5'", "0.5"),
    ],
)
def test_scalars(tmp_path: Path, text: str, value: object) -> None:
    assert load_yaml(write(tmp_path, text)).data == {"v": value}


@pytest.mark.parametrize(
    ("text", "where", "tag"),
    [
        ("a: 1\nv: !!python/name:os.system x\n", "v", "!!python/name:os.system"),
        ("a: 1\nv: !!omap\n  - x: 1\n", "v", "!!omap"),
        ("a: 1\nv: !!set\n  x: null\n", "v", "!!set"),
        ("a: 1\nv:\n  - !env HOME\n", "v[0]", "!env"),
    ],
)
def test_unsupported_tags_on_scalars_sequences_and_mappings(
    tmp_path: Path, text: str, where: str, tag: str
) -> None:
    with pytest.raises(YamlProblem) as info:
        load_yaml(write(tmp_path, text))
    problem = info.value.problem
    assert (problem.line, problem.field, problem.message, problem.fix) == (
        2 if where == "v" else 3,
        where,
        f"unsupported tag {tag}",
        "remove the tag (only !include is supported)",
    )


def test_merge_keys_do_not_count_as_duplicates(tmp_path: Path) -> None:
    data = load_yaml(write(tmp_path, "a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  y: 3\n")).data
    assert data["b"] == {"x": 1, "y": 3}


def test_text_include_strips_final_newline_and_may_repeat(tmp_path: Path) -> None:
    write(tmp_path, "Hello\n\n", "inc/t.md")
    loaded = load_yaml(write(tmp_path, "a: !include inc/t.md\nb: !include inc/t.md\n"))
    assert loaded.data == {"a": "Hello", "b": "Hello"}
    assert [p.name for p in loaded.files] == ["s.yaml", "t.md", "t.md"]


def test_yaml_include_is_parsed_with_its_own_lines(tmp_path: Path) -> None:
    write(tmp_path, '{\n  "type": "object",\n  "x": [1, 2]\n}\n', "schema.json")
    loaded = load_yaml(write(tmp_path, "top: 1\ns: !include schema.json\n"))
    assert loaded.data == {"top": 1, "s": {"type": "object", "x": [1, 2]}}
    assert loaded.lines[("s",)].line == 2 and loaded.lines[("s",)].file.endswith("s.yaml")
    assert loaded.lines[("s", "x")].line == 3
    assert loaded.lines[("s", "x")].file.endswith("schema.json")


def test_include_cycle_and_depth(tmp_path: Path) -> None:
    write(tmp_path, "x: !include b.yaml\n", "a.yaml")
    write(tmp_path, "y: !include a.yaml\n", "b.yaml")
    with pytest.raises(YamlProblem, match="includes itself"):
        load_yaml(tmp_path / "a.yaml")
    for level in range(MAX_INCLUDE_DEPTH + 2):
        write(tmp_path, f"v: !include d{level + 1}.yaml\n", f"d{level}.yaml")
    write(tmp_path, "v: end\n", f"d{MAX_INCLUDE_DEPTH + 2}.yaml")
    with pytest.raises(YamlProblem, match="nested deeper"):
        load_yaml(tmp_path / "d0.yaml")


def test_sha256_covers_included_files(tmp_path: Path) -> None:
    write(tmp_path, "Be brief.", "sys.md")
    path = write(tmp_path, HEAD + "system: !include sys.md\n" + PROMPT)
    before = load_scenario(path).sha256
    write(tmp_path, "Be very brief.", "sys.md")
    assert load_scenario(path).sha256 != before


def test_include_of_fifo_is_refused(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.md")
    started = time.perf_counter()
    assert any(
        "not a regular file" in p
        for p in problems(tmp_path, HEAD + "system: !include pipe.md\n" + PROMPT)
    )
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "(top level)"),
        (("prompts", 2, "turns", 0), "prompts[2].turns[0]"),
        (("gates", "a_vs_b.x_max"), 'gates["a_vs_b.x_max"]'),
        (("tool_results", "get-time"), "tool_results.get-time"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


# --- models and rules ----------------------------------------------------------------------------


def test_params_mirror_the_neutral_request() -> None:
    assert set(ScenarioParams.model_fields) == set(Params.model_fields)


@pytest.mark.parametrize("param", sorted(set(UNMAPPABLE_CHAT_PARAMS) - {"max_tokens"}))
def test_every_chat_only_param_is_rejected_with_the_translator_reason(
    tmp_path: Path, param: str
) -> None:
    found = problems(tmp_path, HEAD + f"defaults:\n  {param}: 1\n" + PROMPT)
    reason, fix = split_reason(UNMAPPABLE_CHAT_PARAMS[param])
    assert found == [f"defaults.{param}: {param} is Chat-only: {reason} — {fix}"]


def test_chat_only_param_on_a_prompt_and_at_top_level(tmp_path: Path) -> None:
    assert problems(tmp_path, HEAD + "seed: 1\n" + PROMPT)[0].startswith(
        "seed: unknown key seed — pass --seed"
    )
    assert problems(tmp_path, HEAD + "prompts:\n  - id: p\n    input: Hi\n    n: 2\n")[
        0
    ].startswith("prompts[0].n: n is Chat-only")


def test_reasoning_model_param_points_at_the_prompt_that_sets_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nname: t\nmodel: gpt-4.1-mini\nprompts:\n"
        "  - id: a\n    input: Hi\n  - id: b\n    model: o4-mini\n    input: Hi\n"
        "    params: {temperature: 0.5}\n",
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(
        f"{path.as_posix()}:10: prompts[1].params.temperature: o4-mini is a reasoning model"
    )


def test_defaults_problem_is_reported_once_for_many_prompts(tmp_path: Path) -> None:
    text = (
        "version: 1\nname: t\nmodel: o3\ndefaults: {top_p: 0.5}\nprompts:\n"
        "  - {id: a, input: Hi}\n  - {id: b, input: Hi}\n"
    )
    assert len(problems(tmp_path, text)) == 1


def test_tool_results_may_be_written_as_yaml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD + "prompts:\n  - id: p\n    input: Hi\n    tools: [{name: f}]\n"
        "    tool_results: {f: {ok: true, items: [1, 2]}}\n",
    )
    prompt = load_scenario(path).prompts[0]
    assert prompt.tool_results == {"f": '{"ok":true,"items":[1,2]}'}
    assert prompt.tools is not None and prompt.tools[0].parameters == {
        "type": "object",
        "properties": {},
    }


def test_tool_choice_none_needs_no_results(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD + "prompts:\n  - id: p\n    input: Hi\n    tools: [{name: f}]\n"
        "    tool_choice: none\n",
    )
    assert load_scenario(path).prompts[0].tool_choice == "none"


def test_strict_schema_rules_reach_nested_objects(tmp_path: Path) -> None:
    text = HEAD + (
        "prompts:\n  - id: p\n    input: Hi\n    output_schema:\n      name: s\n"
        "      schema:\n        type: object\n        properties:\n"
        "          items:\n            type: array\n            items:\n"
        "              type: object\n              properties: {a: {type: string}}\n"
        "              required: [a]\n"
        "        required: [items]\n        additionalProperties: false\n"
    )
    assert problems(tmp_path, text) == [
        "prompts[0].output_schema.schema.properties.items.items: strict schemas need "
        "additionalProperties: false on every object — add additionalProperties: false here"
    ]


def test_output_schema_strict_false_skips_the_strict_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD + "prompts:\n  - id: p\n    input: Hi\n    output_schema:\n"
        "      {name: s, strict: false, schema: {type: object, properties: "
        "{a: {type: string}}}}\n",
    )
    assert load_scenario(path).prompts[0].output_schema is not None


@pytest.mark.parametrize(
    "gates",
    [
        "responses_vs_chat.ttft_p50_ratio_max: 1.5",
        '"chat#2_vs_chat.similarity_mean_min": 0.9',
        "chat.error_rate_max: 0.05",
        "responses.ttft_p50_ms_max: 800",
        "responses_vs_chat.cache_hit_ratio_delta_min: -0.1",
    ],
)
def test_valid_gate_keys(tmp_path: Path, gates: str) -> None:
    path = write(
        tmp_path, HEAD + 'arms: [chat, "chat#2", responses]\n' + PROMPT + f"gates:\n  {gates}\n"
    )
    assert len(load_scenario(path).gates) == 1


@pytest.mark.parametrize(
    ("gate", "words"),
    [
        ("chat_vs_chat.cost_ratio_max: 1", "compares an arm with itself"),
        ("responses_vs_chat_vs_chat#2.cost_ratio_max: 1", "more than two arms"),
        ("chat.cost_ratio_max: 1", "write <arm>_vs_<arm>.cost_ratio_max"),
        ("responses_vs_chat.cost_ratio_max: 0", "must be above 0"),
        ("chat.error_rate_max: 5", "outside 0–1"),
        ("chat.ttft_p50_ms_max: -1", "negative"),
        ("responses_vs_chat.ttft_p50_ratio: 1", "is not <arm>_vs_<arm>"),
    ],
)
def test_invalid_gates(tmp_path: Path, gate: str, words: str) -> None:
    found = problems(
        tmp_path, HEAD + 'arms: [chat, "chat#2", responses]\n' + PROMPT + f"gates:\n  {gate}\n"
    )
    assert len(found) == 1 and words in found[0]


def test_gate_metrics_have_a_scope() -> None:
    assert set(GATE_METRICS.values()) == {"pair", "arm"}
    assert GATE_METRICS["ttft_p50_ratio"] == "pair" and GATE_METRICS["error_rate"] == "arm"


@pytest.mark.parametrize(
    ("snippet", "words"),
    [
        ("system: Hi\ndeveloper: Hi\n", "both system and developer"),
        ("arms: []\n", "arms: must not be empty"),
        ("warmup: 101\n", "must be ≤ 100"),
        ("defaults: {temperature: 3}\n", "must be ≤ 2"),
        ("defaults: {temperature: .nan}\n", "not a finite number"),
        ("defaults: {stream: yes}\n", "expected true or false"),
        (
            "defaults: {metadata: {" + ", ".join(f"k{i}: v" for i in range(17)) + "}}\n",
            "at most 16",
        ),
        ("cold: warm\n", "use one of: new-prompt-prefix"),
        ("similarity: {method: [text, text]}\n", "listed twice"),
        ("name: has space\n", "not a slug"),
        ("arms: [chat, responses_chained]\nprompts_x: 1\n", "unknown key prompts_x"),
        ("margins: {latency_pct: -1}\n", "margins.latency_pct"),
        ("margins: {cost_pct: 100}\n", "must be < 100"),
        ("margins: {similarity: 2}\n", "≤ 1"),
        ("margins: {latency: 10}\n", "did you mean latency_pct?"),
    ],
)
def test_top_level_rules(tmp_path: Path, snippet: str, words: str) -> None:
    key = snippet.split(":", 1)[0]
    text = HEAD.replace("name: t\n", "") if key == "name" else HEAD
    found = problems(tmp_path, text + snippet + PROMPT)
    assert len(found) == 1 and words in found[0], found


def test_margins_default_and_override(tmp_path: Path) -> None:
    assert load_scenario(write(tmp_path, HEAD + PROMPT)).margins.to_margins().cost_pct == 2.0
    path = write(tmp_path, HEAD + "margins: {latency_pct: 5, cache_points: 1}\n" + PROMPT)
    m = load_scenario(path).margins.to_margins()
    assert (m.latency_pct, m.cache_points, m.cost_pct) == (5.0, 1.0, 2.0)


def test_unknown_key_without_suggestion_lists_allowed_keys(tmp_path: Path) -> None:
    found = problems(tmp_path, HEAD + "prompts:\n  - id: p\n    input: Hi\n    zzz: 1\n")
    assert found == [
        "prompts[0].zzz: unknown key zzz — remove it; allowed here: id, model, "
        "params, system, developer, messages, input, turns, tools, tool_choice, "
        "tool_results, output_schema, output, reference, weight"
    ]


def test_chained_store_false_on_a_prompt(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        HEAD + 'arms: [responses, "responses_chained#2", '
        "responses_chained]\nprompts:\n  - id: p\n    input: Hi\n"
        "    params: {store: false}\n",
    )
    assert len(found) == 1 and found[0].startswith("prompts[0].params.store: responses_chained")


def test_store_false_is_fine_without_the_chained_arm(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "defaults: {store: false}\n" + PROMPT)
    assert load_scenario(path).defaults.store is False


def test_validate_paths_counts_files(tmp_path: Path) -> None:
    write(tmp_path, HEAD + PROMPT, "a/one.yaml")
    write(tmp_path, HEAD + PROMPT, "a/b/two.yml")
    assert validate_paths([tmp_path / "a"]) == ([], 2)


def test_scenario_error_lines_are_sorted_by_line(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, HEAD + "repeats: 0\nwarmup: -1\n" + PROMPT))
    assert [int(p.split(":")[1]) for p in info.value.problems] == [4, 5]


def test_split_reason() -> None:
    assert split_reason("a; b; fix it.") == ("a; b", "fix it")
    assert split_reason("what — how") == ("what", "how")
    assert split_reason("just this.") == ("just this", "see scenarios/README.md")


def test_scenario_model_is_strict() -> None:
    with pytest.raises(ValueError, match="repeats"):
        Scenario.model_validate(
            {
                "version": 1,
                "name": "x",
                "model": "m",
                "repeats": "5",
                "prompts": [{"id": "p", "input": "Hi"}],
            }
        )


def test_parallel_tool_calls_needs_tools(tmp_path: Path) -> None:
    found = problems(tmp_path, HEAD + "defaults: {parallel_tool_calls: false}\n" + PROMPT)
    assert len(found) == 1 and found[0].startswith("defaults.parallel_tool_calls: ")


@pytest.mark.parametrize(
    ("snippet", "methods"),
    [
        ("", ["text"]),
        ("similarity: {method: semantic}\n", ["semantic"]),
        ("similarity: {method: [text, semantic]}\n", ["text", "semantic"]),
    ],
)
def test_similarity_method_may_be_one_name(
    tmp_path: Path, snippet: str, methods: list[str]
) -> None:
    assert load_scenario(write(tmp_path, HEAD + snippet + PROMPT)).similarity.method == methods


def test_an_unknown_similarity_method_names_the_choices(tmp_path: Path) -> None:
    found = problems(tmp_path, HEAD + "similarity: {method: embeddings}\n" + PROMPT)
    assert len(found) == 1 and "semantic" in found[0], found
