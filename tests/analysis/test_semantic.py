"""Offline semantic similarity (WordLlama): loads from the wheel without the network, has its own
A/A floor, is opt-in per scenario, and falls back to lexical similarity when not installed."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.analysis.analyze import (
    SyntheticProfile,
    analyze_run,
    analyze_table,
    semantic_backend,
    synthetic_observations,
    write_synthetic_run,
)
from harness.analysis.metrics import ObservationTable
from harness.analysis.semantic import SemanticUnavailable, load_embedder
from harness.analysis.similarity import semantic_similarity
from harness.rundir import read_meta, scenario_digest, write_meta
from harness.scenario.load import load_scenario

SCENARIO = """
version: 1
name: synthetic
model: gpt-4.1-mini
arms: [chat, responses, "chat#2"]
prompts:
  - {id: p, input: "Hello"}
similarity: {method: %s}
"""


@pytest.fixture
def no_wordllama(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The optional package is absent (as after a plain ``pip install shadow-harness``)."""
    load_embedder.cache_clear()
    monkeypatch.setitem(sys.modules, "wordllama", None)  # import raises ImportError
    yield
    load_embedder.cache_clear()


def test_the_bundled_model_loads_without_any_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise OSError("DNS lookup attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # beside conftest's connect() block
    load_embedder.cache_clear()
    embed = load_embedder()
    vectors = np.asarray(embed(["The shop opens at nine.", "Bananas are yellow."]))
    assert vectors.shape == (2, 256) and np.isfinite(vectors).all()


def test_paraphrases_score_above_unrelated_text_and_identical_text_scores_one() -> None:
    embed = load_embedder()
    a = ["Our support hours are 9am to 5pm on weekdays."] * 3 + [""]
    b = [
        "We offer support from nine to five, Monday to Friday.",
        "Bananas are a yellow fruit rich in potassium.",
        a[0],
        "",
    ]
    para, unrelated, same, empty = semantic_similarity(a, b, embed)
    assert para > unrelated + 0.2
    assert same == 1.0 and empty == 1.0


def test_semantic_similarity_has_its_own_aa_noise_floor() -> None:
    obs = synthetic_observations(SyntheticProfile(divergence=0.3), repeats=4)
    table = ObservationTable.from_observations(obs)
    s = analyze_table(table, resamples=200, embedder=load_embedder())
    sem = s.scenarios[0].comparisons["responses_vs_chat"].similarity.semantic
    assert sem is not None and sem.noise_floor_from == "chat#2_vs_chat"
    assert sem.noise_floor == 1.0  # the A/A replicate answers alike
    assert sem.mean is not None and 0.0 < sem.mean < 1.0
    gap = sem.below_noise_floor
    assert gap is not None and gap.significant and (gap.value or 0.0) > 0.0


def _run_dir(tmp_path: Path, method: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO % method, encoding="utf-8")
    run_dir = write_synthetic_run(
        tmp_path / "run", synthetic_observations(SyntheticProfile(divergence=0.2), repeats=3)
    )
    meta = read_meta(run_dir)
    entry = {"name": "synthetic", "path": str(scenario)}
    entry["sha256"] = scenario_digest(load_scenario(scenario))
    write_meta(run_dir, meta.model_copy(update={"scenarios": [entry]}))
    return run_dir


def test_semantic_is_opt_in_per_scenario(tmp_path: Path) -> None:
    sim = analyze_run(_run_dir(tmp_path, "[text]"), resamples=100).scenarios[0]
    assert sim.comparisons["responses_vs_chat"].similarity.semantic is None
    asked = analyze_run(_run_dir(tmp_path / "b", "semantic"), resamples=100)
    assert asked.scenarios[0].comparisons["responses_vs_chat"].similarity.semantic is not None
    assert asked.warnings == []


def test_without_the_package_lexical_similarity_stays_and_the_summary_says_so(
    tmp_path: Path, no_wordllama: None
) -> None:
    with pytest.raises(SemanticUnavailable, match="not installed"):
        load_embedder()
    s = analyze_run(_run_dir(tmp_path, "[text, semantic]"), resamples=100)
    sim = s.scenarios[0].comparisons["responses_vs_chat"].similarity
    assert sim.semantic is None and sim.text is not None and sim.text.mean is not None
    assert s.warnings == [
        "scenario synthetic: semantic similarity was asked for but the wordllama package is "
        "not installed (pip install 'shadow-harness[semantic]' (the wordllama package)); only "
        "lexical (word) similarity is reported"
    ]


def test_semantic_backend_loads_only_for_scenarios_that_ask(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO % "[text, json]", encoding="utf-8")
    assert semantic_backend([load_scenario(path)]) == (None, frozenset(), [])


def test_importing_the_analysis_does_not_import_wordllama() -> None:
    code = (
        "import sys, harness.analysis.analyze, harness.cli.app; print('wordllama' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
