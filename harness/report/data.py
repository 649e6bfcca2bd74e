"""Everything a report reads from a run directory, read once: meta, summary, observations.

Observations are parsed into columns (:class:`~harness.analysis.metrics.ObservationTable`, the same
fast path the analysis uses); the few fields the table does not keep — HTTP status, error message
and the attempts of failed or retried requests — are kept on the side, keyed like the table. Nothing
here sends a request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.analysis.analyze import LoadedRun, current_summary, open_run
from harness.analysis.metrics import ObservationTable
from harness.errors import ScenarioError
from harness.records import NOT_SENT, RunMeta
from harness.rundir import (
    check_observation_rows,
    gc_paused,
    read_observation_rows,
    scenario_changed,
)
from harness.summary import Summary

if TYPE_CHECKING:
    from harness.history.query import Trend
    from harness.runner.plan import Step

#: (scenario, prompt_id, arm, repeat, turn, warmup): one planned request.
RowKey = tuple[str, str, str, int, int, bool]


@dataclass(frozen=True)
class AttemptView:
    status: int | None
    error_type: str | None
    error_message: str | None
    retry_after_ms: float | None
    waited_ms: float


@dataclass(frozen=True)
class RowExtra:
    """What the table drops, for failed or retried requests only."""

    ok: bool
    error_type: str | None
    status: int | None
    error_message: str | None
    attempts: tuple[AttemptView, ...]


@dataclass(frozen=True)
class PromptInfo:
    """A prompt as written in the scenario file (for the per-prompt detail).

    ``steps[k]`` is what request ``turn = k + 1`` sent: ``("user", text)``, or
    ``("tool results", names)`` for the follow-up that answers the previous reply's tool calls.
    """

    steps: tuple[tuple[str, str], ...]
    tools: tuple[str, ...]
    output_schema: str | None
    weight: int = 1
    reference: str | None = None


@dataclass
class RunData:
    run_dir: Path
    meta: RunMeta
    summary: Summary
    table: ObservationTable
    extras: dict[RowKey, RowExtra]
    not_sent: set[RowKey] = field(default_factory=set)
    prompts: dict[tuple[str, str], PromptInfo] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    summary_computed: bool = False
    #: the last runs of this run's target, from the run history (None: no history)
    trend: Trend | None = None


def _key(r: dict[str, Any], turn: int | None = None) -> RowKey:
    return (
        r["scenario"],
        r["prompt_id"],
        r["arm"],
        int(r["repeat"]),
        int(r["turn"]) if turn is None else turn,
        bool(r.get("warmup", False)),
    )


def _not_sent(rows: list[dict[str, Any]]) -> set[RowKey]:
    """Tool-result follow-ups the runner did not send because the reply before called no tool.

    The runner records them as ``not_sent`` (older runs: ``skipped``); they are not errors.
    """
    replied_without_tools = {_key(r) for r in rows if r.get("ok") and not r.get("tool_calls")}
    return {
        _key(r)
        for r in rows
        if r.get("error_type") == NOT_SENT
        or (
            r.get("error_type") == "skipped"
            and not r.get("attempts")
            and _key(r, int(r["turn"]) - 1) in replied_without_tools
        )
    }


def _extras(rows: list[dict[str, Any]]) -> dict[RowKey, RowExtra]:
    out: dict[RowKey, RowExtra] = {}
    for r in rows:
        attempts = r.get("attempts") or []
        if r.get("ok") and len(attempts) <= 1:
            continue
        key = _key(r)
        out[key] = RowExtra(
            ok=bool(r.get("ok")),
            error_type=r.get("error_type"),
            status=r.get("status"),
            error_message=r.get("error_message"),
            attempts=tuple(
                AttemptView(
                    a.get("status"),
                    a.get("error_type"),
                    a.get("error_message"),
                    a.get("retry_after_ms"),
                    float(a.get("waited_ms") or 0.0),
                )
                for a in attempts
            ),
        )
    return out


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        text = getattr(part, "text", None)
        parts.append(
            text if text is not None else f"[image, detail {getattr(part, 'detail', 'auto')}]"
        )
    return "\n".join(parts)


def _step_view(
    step: Step, users: Iterator[Any], tools: tuple[str, ...], fixed: int
) -> tuple[str, str]:
    if step.messages:
        last = step.messages[-1]
        what = "user" if last.role == "user" else "tool results"
        text = _content_text(last.content or "") if last.role == "user" else "as logged"
        return what, f"{text} (the end of a fixed history of {fixed} messages)"
    if step.kind == "user":
        return "user", _content_text(next(users))
    return "tool results", f"canned results of the tools called ({', '.join(tools)})"


def _scenario_prompts(meta: RunMeta, notes: list[str]) -> dict[tuple[str, str], PromptInfo]:
    out: dict[tuple[str, str], PromptInfo] = {}
    if not meta.scenarios:
        return out
    from harness.runner.plan import build_plan
    from harness.scenario.load import load_scenario

    for entry in meta.scenarios:
        path = Path(str(entry.get("path", "")))
        if not path.is_file():
            notes.append(
                f"scenario file {path} not found from {Path.cwd()}: prompt texts are not shown"
            )
            continue
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            notes.append(
                f"scenario file {path} is no longer valid ({len(exc.problems)} "
                "problem(s)): prompt texts are not shown"
            )
            continue
        if scenario_changed(entry.get("sha256"), scenario, unrecorded=False):
            notes.append(
                f"scenario file {path} changed since the run: prompt texts are from "
                "the current file"
            )
        plan = build_plan(scenario, repeats=1)
        planned: dict[str, tuple[Step, ...]] = {}
        for conv in plan.conversations:
            if not conv.warmup:
                planned.setdefault(conv.prompt_id, conv.steps)
        for p in scenario.prompts:
            users = iter(p.user_turns)
            names = tuple(t.name for t in scenario.tools_for(p))
            fixed = len(p.messages or ())
            steps = tuple(_step_view(step, users, names, fixed) for step in planned.get(p.id, ()))
            output = scenario.output_for(p)
            out[(scenario.name, p.id)] = PromptInfo(
                steps=steps,
                tools=names,
                output_schema=output if isinstance(output, str | None) else output.name,
                weight=p.weight,
                reference=p.reference,
            )
    return out


def load_run(run_dir: Path, *, save_summary: bool = True) -> RunData:
    """Read a run directory; analyse it (and save ``summary.json``) if it has no summary.

    The run is read once: observations parsed once (into the table, and the failure details
    the table drops), meta.json read once, shards merged at most once; the analysis gets
    them as a :class:`~harness.analysis.analyze.LoadedRun`.
    """
    meta, obs_path = open_run(run_dir)
    with gc_paused():
        rows = read_observation_rows(obs_path)
        loaded = LoadedRun.from_rows(run_dir, meta, obs_path, rows)
        try:
            extras = _extras(rows)
            not_sent = _not_sent(rows)
        except (AttributeError, KeyError, TypeError, ValueError):
            check_observation_rows(obs_path, rows)  # a record the table let pass: name its line
            raise
        del rows
    summary, computed = current_summary(run_dir, run=loaded, save=save_summary)
    notes: list[str] = []
    prompts = _scenario_prompts(meta, notes)
    return RunData(
        run_dir=run_dir,
        meta=meta,
        summary=summary,
        table=loaded.table.latest_per_key(),
        extras=extras,
        not_sent=not_sent,
        prompts=prompts,
        notes=notes,
        summary_computed=computed,
    )
