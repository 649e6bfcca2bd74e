"""``harness import --sample N --stratify … --seed`` and ``--group-by``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli.app import main
from harness.importers.sample import Sampler
from harness.importers.source import BadLine, SourceRequest
from harness.scenario.load import load_scenario


def body(
    i: int,
    *,
    model: str = "gpt-4.1-mini",
    tools: bool = False,
    stream: bool = False,
    system: str = "You are terse.",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Question {i}"},
        ],
    }
    if tools:
        out["tools"] = [
            {
                "type": "function",
                "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
            }
        ]
    if stream:
        out["stream"] = True
    if metadata is not None:
        out["metadata"] = metadata
    return out


def mixed() -> list[dict[str, Any]]:
    """600 plain gpt-4.1-mini, 300 gpt-4.1 with tools, 100 streamed: three strata."""
    return (
        [body(i) for i in range(600)]
        + [body(i, model="gpt-4.1", tools=True) for i in range(600, 900)]
        + [body(i, stream=True) for i in range(900, 1000)]
    )


def write_log(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def run_import(tmp_path: Path, log: Path, *extra: str, out: str = "s.yaml") -> dict[str, Any]:
    report = tmp_path / "report.json"
    args = ["import", "batch", str(log), "--out", str(tmp_path / out), "--report", str(report)]
    assert main([*args, *extra]) == 0
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return data


def test_stratified_sample_keeps_each_stratum_in_proportion(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", mixed())
    report = run_import(
        tmp_path, log, "--sample", "100", "--stratify", "model,tools,stream", "--seed", "7"
    )
    sample = report["sample"]
    assert (sample["population"], sample["kept"], sample["seed"]) == (1000, 100, 7)
    assert {s["stratum"]: (s["population"], s["kept"]) for s in sample["strata"]} == {
        "model=gpt-4.1-mini,tools=no,stream=no": (600, 60),
        "model=gpt-4.1,tools=yes,stream=no": (300, 30),
        "model=gpt-4.1-mini,tools=no,stream=yes": (100, 10),
    }
    assert report["lines"] == 1000 and report["requests"] == 100
    scenario = load_scenario(tmp_path / "s.yaml")
    assert sum(p.weight for p in scenario.prompts) == 100
    lines = [int(p.id.removeprefix("line-")) for p in scenario.prompts]
    # each prompt is the line it came from, in the stratum it came from
    assert sum(1 for n in lines if n > 900) == 10
    assert sum(1 for n in lines if 600 < n <= 900) == 30


def test_stratify_by_a_metadata_key(tmp_path: Path) -> None:
    """Known truth: 500 billing, 300 shipping, 200 without the key → 50/30/20 of 100; the
    strata cross with model, and a metadata value in a stratum name is scrubbed."""
    bodies = (
        [body(i, metadata={"team": "billing"}) for i in range(500)]
        + [body(i, metadata={"team": "shipping"}) for i in range(500, 800)]
        + [body(i) for i in range(800, 950)]
        + [body(i, metadata={"other": "x"}) for i in range(950, 1000)]
    )
    log = write_log(tmp_path / "log.jsonl", bodies)
    report = run_import(tmp_path, log, "--sample", "100", "--stratify", "metadata.team")
    assert {s["stratum"]: (s["population"], s["kept"]) for s in report["sample"]["strata"]} == {
        "metadata.team=billing": (500, 50),
        "metadata.team=shipping": (300, 30),
        "metadata.team=(none)": (200, 20),
    }
    scenario = load_scenario(tmp_path / "s.yaml")
    lines = [int(p.id.removeprefix("line-")) for p in scenario.prompts]
    assert sum(1 for n in lines if n <= 500) == 50
    assert sum(1 for n in lines if 500 < n <= 800) == 30

    crossed = [
        body(i, model="gpt-4.1" if i % 2 else "gpt-4.1-mini", metadata={"user": f"u{i % 2}@ex.com"})
        for i in range(40)
    ]
    log = write_log(tmp_path / "crossed.jsonl", crossed)
    report = run_import(tmp_path, log, "--sample", "10", "--stratify", "model,metadata.user")
    strata = {s["stratum"]: s["kept"] for s in report["sample"]["strata"]}
    assert strata == {
        "model=gpt-4.1-mini,metadata.user=[redacted-email]": 5,
        "model=gpt-4.1,metadata.user=[redacted-email]": 5,
    }
    assert "@ex.com" not in (tmp_path / "report.json").read_text(encoding="utf-8")


def test_a_metadata_stratum_comes_from_defaults_when_the_request_has_none() -> None:
    items = [SourceRequest(n, body(n)) for n in range(1, 5)]
    sampler = Sampler(2, ("metadata.team",), 0, {"metadata": {"team": "core"}})
    assert len([i for i in sampler.sample(items)]) == 2
    assert sampler.report is not None
    assert [s.stratum for s in sampler.report.strata] == ["metadata.team=core"]


def test_the_sample_is_seeded(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", mixed())
    texts = []
    for seed, out in (("1", "a.yaml"), ("1", "b.yaml"), ("2", "c.yaml")):
        run_import(tmp_path, log, "--sample", "50", "--seed", seed, out=out)
        texts.append((tmp_path / out).read_text(encoding="utf-8").split("prompts:")[1])
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_a_sample_larger_than_the_source_keeps_everything(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", mixed()[:30])
    report = run_import(tmp_path, log, "--sample", "500")
    assert report["sample"]["kept"] == 30 and report["imported_requests"] == 30


def test_every_request_of_a_stratum_is_equally_likely() -> None:
    """Known truth: 40 requests in a stratum of which 10 are kept → each with probability 1/4.
    Over 2,000 seeds every request's inclusion rate is within 5 standard errors of that."""
    items = [SourceRequest(n, body(n)) for n in range(1, 41)]
    hits: Counter[int] = Counter()
    seeds = 2000
    for seed in range(seeds):
        sampler = Sampler(10, (), seed, {})
        kept = [i.line for i in sampler.sample(items) if isinstance(i, SourceRequest)]
        assert len(kept) == 10 == len(set(kept))
        assert kept == sorted(kept)  # source order
        hits.update(kept)
    p = 0.25
    se = (p * (1 - p) / seeds) ** 0.5
    assert all(abs(hits[n] / seeds - p) < 5 * se for n in range(1, 41))


def test_bad_lines_are_not_sampled_away() -> None:
    items = [SourceRequest(1, body(1)), BadLine(2, "malformed JSON"), SourceRequest(3, body(3))]
    out = list(Sampler(1, (), 0, {}).sample(items))
    assert out[0] == BadLine(2, "malformed JSON")
    assert len(out) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--stratify", "model"], "--stratify: stratifies a sample — add --sample N"),
        (["--sample", "5", "--stratify", "colour"], "--stratify colour: unknown"),
        (["--sample", "5", "--stratify", "metadata."], "--stratify metadata.: unknown"),
        (["--sample", "5", "--stratify", "model,model"], "a key is named twice"),
        (["--sample", "0"], "--sample 0: give a number of requests of 1 or more"),
        (["--group-by", "user"], "--group-by user: unknown"),
    ],
)
def test_bad_sample_and_group_options_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    log = write_log(tmp_path / "log.jsonl", mixed()[:5])
    out = tmp_path / "s.yaml"
    assert main(["import", "batch", str(log), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()


def test_group_by_model_writes_one_scenario_per_model(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.jsonl", mixed())
    report = run_import(tmp_path, log, "--group-by", "model", out="by-model")
    files = sorted(p.name for p in (tmp_path / "by-model").iterdir())
    assert files == ["gpt-4.1-mini.yaml", "gpt-4.1.yaml"]
    mini = load_scenario(tmp_path / "by-model" / "gpt-4.1-mini.yaml")
    full = load_scenario(tmp_path / "by-model" / "gpt-4.1.yaml")
    assert (mini.model, full.model) == ("gpt-4.1-mini", "gpt-4.1")
    assert (len(mini.prompts), len(full.prompts)) == (700, 300)
    assert report["group_by"] == "model" and report["lines"] == 1000
    assert {k: v["requests"] for k, v in report["groups"].items()} == {
        "gpt-4.1-mini": 700,
        "gpt-4.1": 300,
    }


def test_group_by_system_prompt_and_metadata(tmp_path: Path) -> None:
    bodies = [
        body(1, system="You are the billing assistant.", metadata={"team": "billing"}),
        body(2, system="You are the billing assistant.", metadata={"team": "billing"}),
        body(3, system="You answer shipping questions.", metadata={"team": "Ship Ops"}),
        body(4, system="You answer shipping questions."),
    ]
    log = write_log(tmp_path / "log.jsonl", bodies)
    run_import(tmp_path, log, "--group-by", "system-prompt", out="by-system")
    assert sorted(p.name for p in (tmp_path / "by-system").iterdir()) == [
        "system-1-you-are-the-billing-assistant.yaml",
        "system-2-you-answer-shipping-questions.yaml",
    ]
    shipping = yaml.safe_load(
        (tmp_path / "by-system" / "system-2-you-answer-shipping-questions.yaml").read_text()
    )
    assert shipping["system"] == "You answer shipping questions."
    assert [p["id"] for p in shipping["prompts"]] == ["line-3", "line-4"]

    report = run_import(tmp_path, log, "--group-by", "metadata.team", out="by-team")
    assert sorted(report["groups"]) == ["billing", "no-team", "ship-ops"]
    assert sorted(p.name for p in (tmp_path / "by-team").iterdir()) == [
        "billing.yaml",
        "no-team.yaml",
        "ship-ops.yaml",
    ]


def test_group_by_with_a_file_as_out_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "log.jsonl", mixed()[:5])
    out = tmp_path / "s.yaml"
    out.write_text("x", encoding="utf-8")
    assert main(["import", "batch", str(log), "--out", str(out), "--group-by", "model"]) == 2
    err = capsys.readouterr().err.strip()
    assert "with --group-by, --out is a directory" in err and "\n" not in err


def test_sample_then_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The sample is drawn from the whole source, then split into groups."""
    log = write_log(tmp_path / "log.jsonl", mixed())
    report = run_import(
        tmp_path, log, "--sample", "50", "--stratify", "model", "--group-by", "model", out="g"
    )
    assert report["sample"]["kept"] == 50
    assert {k: v["requests"] for k, v in report["groups"].items()} == {
        "gpt-4.1-mini": 35,
        "gpt-4.1": 15,
    }
    assert "sampled 50 of 1000 requests (seed 0, stratified by model)" in capsys.readouterr().out


def test_too_many_prompts_for_one_file_point_to_sample_and_group_by(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = "word " * 600
    bodies = [body(i, system=long) | {"user": f"u{i}"} for i in range(700)]
    for b in bodies:
        b["messages"][1]["content"] = f"{long} {b['user']}"
    log = write_log(tmp_path / "log.jsonl", bodies)
    out = tmp_path / "s.yaml"
    assert main(["import", "batch", str(log), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "over the 2,097,152-byte limit of a scenario file" in err and "--sample N" in err
    assert "\n" not in err and not out.exists()
    assert main(["import", "batch", str(log), "--out", str(out), "--sample", "100"]) == 0


EMAIL = "jane.doe@example.com"
KEY = "sk-proj-Abc123def456GHI789jkl0"


@pytest.mark.parametrize("group_by", ["metadata.user_email", "system-prompt"])
def test_group_names_and_report_notes_are_scrubbed(tmp_path: Path, group_by: str) -> None:
    """A planted e-mail and API key reach no file name, no scenario and no report note."""
    bodies: list[Any] = [
        body(1, system=f"{KEY} You are terse.", metadata={"user_email": EMAIL}),
        body(2, system=f"{KEY} You are terse.", metadata={"user_email": EMAIL}),
        body(3, system="You are kind.", metadata={"user_email": "john@example.com"}),
        {"custom_id": "a", "method": "POST", "url": f"/v1/{KEY}", "body": body(4)},
        {"custom_id": "b", "method": EMAIL, "url": "/v1/chat/completions", "body": body(5)},
    ]
    log = write_log(tmp_path / "log.jsonl", bodies)
    report = run_import(tmp_path, log, "--group-by", group_by, "--skip-bad", out="groups")

    files = sorted((tmp_path / "groups").iterdir())
    assert len(files) == 2  # the two e-mails (or prompts) stay two groups, both redacted
    written = [str(tmp_path / "report.json"), *(str(p) for p in files)]
    written += [p.read_text(encoding="utf-8") for p in files]
    written.append(json.dumps(report))
    for secret in (EMAIL, "jane.doe-example.com", "jane.doe", KEY, KEY.lower()):
        assert not any(secret in text for text in written), secret
    assert len(report["bad_lines"]) == 2, report  # the notes are there, scrubbed
