"""Scenario files: pydantic models (``extra="forbid"``, strict types), loading and validation.

A scenario describes prompts once; the planner (:mod:`harness.runner.plan`) turns it into one
conversation per arm × repeat. Every problem is reported as one line
``file:line: field.path: what is wrong — how to fix`` (see :class:`Problem`), in three passes:

1. YAML (:mod:`harness.scenario.yaml_safe`): size, encoding, syntax, duplicate keys, ``!include``,
   alias and nesting limits — stops at the first problem;
2. shapes (pydantic): unknown keys, types, ranges — one line per problem;
3. meaning (:mod:`harness.scenario.check`): cross-field rules that need the whole file (arms, gates,
   tools, structured outputs, parameters the chosen model or API cannot take).

The format is documented in ``scenarios/README.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from harness.errors import ScenarioError
from harness.scenario.check import Found, check_meaning, data_path, describe_error
from harness.scenario.models import (
    GATE_METRICS,
    SCENARIO_VERSION,
    ImagePartSpec,
    OutputSchemaSpec,
    PromptSpec,
    Scenario,
    ScenarioParams,
    SimilaritySpec,
    TextPartSpec,
    ToolSpec,
    split_reason,
    type_name,
)
from harness.scenario.yaml_safe import LoadedYaml, Problem, YamlProblem, format_path, load_yaml

__all__ = [
    "GATE_METRICS",
    "SCENARIO_VERSION",
    "ImagePartSpec",
    "OutputSchemaSpec",
    "Problem",
    "PromptSpec",
    "Scenario",
    "ScenarioParams",
    "SimilaritySpec",
    "TextPartSpec",
    "ToolSpec",
    "load_scenario",
    "split_reason",
    "validate_paths",
]


def _problems(loaded: LoadedYaml, found: Iterable[Found]) -> list[Problem]:
    out = []
    for path, message, fix in found:
        loc = loaded.location(path)
        out.append(Problem(loc.file, loc.line, format_path(path), message, fix))
    return out


def _shape(loaded: LoadedYaml, exc: ValidationError) -> list[Problem]:
    found: list[Found] = []
    for error in exc.errors(include_url=False):
        found.extend(describe_error(error, data_path(error["loc"], loaded.data)))
    return _problems(loaded, found)


# --- loading ------------------------------------------------------------------------------------


def _load(path: Path) -> tuple[Scenario | None, list[Problem], list[Path]]:
    """Load and validate; returns the scenario (None when invalid), problems, files read."""
    try:
        loaded = load_yaml(path)
    except YamlProblem as exc:
        return None, [exc.problem], []
    display = path.as_posix()
    if loaded.data is None:
        return (
            None,
            [
                Problem(
                    display,
                    1,
                    "(top level)",
                    "the file is empty",
                    "start with version: 1, name, model and prompts (see scenarios/README.md)",
                )
            ],
            loaded.files,
        )
    if not isinstance(loaded.data, dict):
        return (
            None,
            [
                Problem(
                    display,
                    loaded.location(()).line,
                    "(top level)",
                    f"a scenario is a mapping of keys, got {type_name(loaded.data)}",
                    "start with version: 1, name, model and prompts (see scenarios/README.md)",
                )
            ],
            loaded.files,
        )
    try:
        scenario = Scenario.model_validate(loaded.data)
    except ValidationError as exc:
        return None, _shape(loaded, exc), loaded.files
    problems = _problems(loaded, check_meaning(scenario))
    if problems:
        return None, problems, loaded.files
    scenario._loaded = loaded
    return scenario, [], loaded.files


def load_scenario(path: Path | str) -> Scenario:
    """Load and validate a scenario file; raises :class:`ScenarioError` with one line per
    problem (``file:line: field: message — fix``)."""
    scenario, problems, _ = _load(Path(path))
    if scenario is None:
        raise ScenarioError([str(p) for p in sorted(problems, key=_order)])
    return scenario


def _order(problem: Problem) -> tuple[str, int]:
    return problem.file, problem.line


def _scenario_files(directory: Path) -> list[Path]:
    return sorted(
        p for pattern in ("*.yaml", "*.yml") for p in directory.rglob(pattern) if p.is_file()
    )


def validate_paths(
    paths: Sequence[Path | str], check: Callable[[Scenario], Iterable[str]] | None = None
) -> tuple[list[str], int]:
    """Validate scenario files and directories (``*.yaml``/``*.yml`` below them).

    Returns ``(problems, files_checked)``; each problem is one line. A YAML file that another
    checked scenario includes (e.g. a schema) is not checked as a scenario of its own. ``check``
    adds the problems of each valid scenario that need more than this package: ``harness
    validate`` passes :func:`harness.runner.plan.translation_problems`, so a request neither API
    accepts is caught (the scenario package must not import the runner).
    """
    results: list[tuple[Path | None, list[str]]] = []
    included: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        files: list[Path]
        if path.is_dir():
            files = _scenario_files(path)
            if not files:
                results.append(
                    (
                        None,
                        [
                            str(
                                Problem(
                                    path.as_posix(),
                                    1,
                                    "(file)",
                                    "no *.yaml or *.yml files in this directory",
                                    "name scenario files or a directory holding them",
                                )
                            )
                        ],
                    )
                )
        else:
            files = [path]
        for file in files:
            scenario, found, read = _load(file)
            included.update(p.resolve() for p in read[1:])
            lines = [str(p) for p in sorted(found, key=_order)]
            if scenario is not None and check is not None:
                lines.extend(check(scenario))
            results.append((file, lines))
    problems: list[str] = []
    checked = 0
    for source, lines in results:
        if source is not None:
            if source.resolve() in included:
                continue
            checked += 1
        problems.extend(lines)
    return problems, checked
