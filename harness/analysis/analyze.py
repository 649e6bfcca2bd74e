"""Analysis orchestration: a run directory → ``summary.json``; two runs → a comparison.

``analyze_run(run_dir)`` reads ``meta.json`` and ``observations.jsonl`` (parsed straight into
columns, no per-record models), analyses each scenario with one shared, seeded bootstrap, tests
the migration guide's claims, and returns a :class:`harness.summary.Summary`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import __version__, fmt
from harness.analysis import decide, stats
from harness.analysis.claims import evaluate_claims
from harness.analysis.metrics import (
    ArmData,
    ArmView,
    Handles,
    Matched,
    ObservationTable,
    arm_summary,
    comparison_key,
    comparison_metrics,
    comparison_pairs,
    costs_per_row,
    latency_columns,
    match_usage,
    power_info,
    register_arm,
    scenario_bootstrap,
    with_nonce_tokens,
)
from harness.analysis.pairs import PairScores, pair_scores, register_gaps, similarity_summary
from harness.analysis.pricing import PriceBook, load_price_overrides
from harness.analysis.similarity import Embedder
from harness.analysis.state import conversation_state
from harness.analysis.traffic import PromptTraffic, apply_traffic
from harness.arms import Arm
from harness.errors import HarnessError
from harness.records import Observation, ObservationWriter, RunMeta, Usage
from harness.rundir import (
    OBSERVATIONS_FILE,
    check_observation_rows,
    gc_paused,
    observations_path,
    read_meta,
    read_observation_rows,
    scenario_changed,
    write_meta,
)
from harness.rundir import read_summary as read_summary  # re-exported: the CLI's import path
from harness.rundir import write_summary as write_summary
from harness.summary import (
    SUMMARY_SCHEMA_VERSION,
    BootstrapInfo,
    Comparison,
    ModelPriceInfo,
    PricingInfo,
    RunArmComparison,
    RunComparison,
    ScenarioSummary,
    Similarity,
    Summary,
)

if TYPE_CHECKING:
    from harness.scenario.models import Scenario

BOOTSTRAP_UNIT = (
    "conversation (prompt × repeat: all its turns, all arms together, paired), stratified by "
    "prompt; whole prompts when a prompt has a single conversation"
)
BOOTSTRAP_METHOD = "multinomial bootstrap of conversations, expanded percentile interval"
#: Output JSON Schemas by (scenario, prompt_id), for schema-validity of structured outputs.
Schemas = Mapping[tuple[str, str], Mapping[str, Any]]


@dataclass(frozen=True)
class LoadedRun:
    """A run directory read once: ``meta.json``, and ``observations.jsonl`` in columns (a
    shadow run's shards merged first). Analysis and report share it instead of each reading
    the run again."""

    run_dir: Path
    meta: RunMeta
    table: ObservationTable
    #: scenarios whose cache figures are not clean: rows flagged ``contaminated_cache``, or
    #: every scenario of a shadow run (older shadow records may lack the flag)
    contaminated: frozenset[str]

    @classmethod
    def from_rows(
        cls, run_dir: Path, meta: RunMeta, path: Path, rows: list[dict[str, Any]]
    ) -> LoadedRun:
        """Columns from rows parsed by :func:`harness.rundir.read_observation_rows`."""
        table, contaminated = _columns(path, rows)
        if meta.shadow is not None:
            contaminated = frozenset(table.scenario)
        return cls(run_dir, meta, table, contaminated)


def open_run(run_dir: Path) -> tuple[RunMeta, Path]:
    """``meta.json``, and the path of ``observations.jsonl`` once a shadow run's per-process
    shards are merged into it."""
    from harness.shadow.store import merge_if_sharded

    meta = read_meta(run_dir)
    merge_if_sharded(run_dir)
    return meta, observations_path(run_dir)


def load_run(run_dir: Path) -> LoadedRun:
    """Read a run directory once (see :class:`LoadedRun`)."""
    meta, path = open_run(run_dir)
    with gc_paused():
        return LoadedRun.from_rows(run_dir, meta, path, read_observation_rows(path))


def load_table(path: Path) -> ObservationTable:
    """Read observations.jsonl into columns (fast path); same rules as ``read_observations``:
    a torn final line is skipped, any other bad line or unknown schema version raises."""
    with gc_paused():
        return _columns(path, read_observation_rows(path))[0]


def _columns(path: Path, rows: list[dict[str, Any]]) -> tuple[ObservationTable, frozenset[str]]:
    """The table, and the scenarios with rows flagged ``contaminated_cache``."""
    try:
        table = ObservationTable.from_dicts(rows)
    except HarnessError:
        check_observation_rows(path, rows)  # names the line of the first invalid record
        raise
    contaminated = frozenset(r["scenario"] for r in rows if r.get("contaminated_cache"))
    return table, contaminated


def _scenario_rows(table: ObservationTable) -> dict[str, np.ndarray[Any, np.dtype[np.int64]]]:
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(table.scenario):
        groups.setdefault(name, []).append(i)
    return {name: np.array(idx, dtype=np.int64) for name, idx in groups.items()}


def _arms(t: ObservationTable, units: np.ndarray[Any, np.dtype[np.int64]]) -> dict[str, ArmData]:
    groups: dict[str, list[int]] = {}
    for i, arm in enumerate(t.arm):
        groups.setdefault(arm, []).append(i)
    out = {}
    for name in sorted(groups, key=lambda a: Arm.of(a).sort_key):
        rows = np.array(groups[name], dtype=np.int64)
        out[name] = ArmData(name, rows, units[rows])
    return out


@dataclass
class _Prepared:
    """One scenario's rows registered with its bootstrap, before the resamples are drawn."""

    table: ObservationTable
    arms: dict[str, ArmData]
    lat: dict[str, np.ndarray[Any, np.dtype[np.float64]]]
    cost: np.ndarray[Any, np.dtype[np.float64]]
    boot: stats.Bootstrap
    handles: dict[str, Handles]
    matched: dict[tuple[str, str], tuple[Matched, Matched]]

    def views(
        self, reps: list[np.ndarray[Any, np.dtype[np.float64]]], warmups: Mapping[str, int]
    ) -> dict[str, ArmView]:
        t, lat, cost = self.table, self.lat, self.cost
        return {
            a: ArmView(
                t,
                arm,
                self.handles[a],
                reps,
                lat,
                arm_summary(t, arm, self.handles[a], reps, lat, cost, warmups.get(a, 0), self.boot),
                self.boot,
            )
            for a, arm in self.arms.items()
        }


def _prepare(
    t: ObservationTable, book: PriceBook, *, name: str, seed: int, resamples: int
) -> _Prepared:
    """Price the rows and register every arm's statistics with one shared bootstrap."""
    boot, units = scenario_bootstrap(t, name=name, seed=seed, resamples=resamples)
    arms = _arms(t, units)
    lat = latency_columns(t)
    cost = costs_per_row(t, book)
    handles = {a: register_arm(boot, t, arm, lat, cost) for a, arm in arms.items()}
    billed = costs_per_row(t, book, without_nonce=True)
    missed = costs_per_row(t, book, without_nonce=True, missed=True)
    matched = {
        (a, b): match_usage(boot, t, arms[a], arms[b], billed, missed)
        for a, b in comparison_pairs(arms)
    }
    return _Prepared(t, arms, lat, cost, boot, handles, matched)


def _clients(t: ObservationTable, arm: ArmData) -> set[str]:
    return {t.client[i] for i in arm.rows.tolist()}


def scenario_summary(
    t: ObservationTable,
    name: str,
    *,
    book: PriceBook,
    seed: int = 0,
    resamples: int = stats.DEFAULT_RESAMPLES,
    warmups: Mapping[str, int] | None = None,
    schemas: Schemas | None = None,
    embedder: Embedder | None = None,
    emulator_profile: str | None = None,
    power_effect: float = 0.25,
    power: float = stats.DEFAULT_TARGET_POWER,
    contaminated_cache: bool = False,
    margins: decide.Margins = decide.DEFAULT_MARGINS,
) -> ScenarioSummary:
    """One scenario's arms, comparisons and claims (``t`` holds only its measured rows).

    ``contaminated_cache``: the rows are shadow pairs (see :mod:`harness.analysis.claims`):
    cache-hit comparisons are left out and the caching and cost claims are not assessed.
    """
    prep = _prepare(t, book, name=name, seed=seed, resamples=resamples)
    pairs = comparison_pairs(prep.arms)
    prompt_schemas = {p: s for (sc, p), s in (schemas or {}).items() if sc == name}
    word_cache: dict[int, list[str]] = {}
    scores: dict[str, PairScores] = {
        comparison_key(a, b): pair_scores(
            t, prep.arms[a], prep.arms[b], prompt_schemas, embedder, word_cache
        )
        for a, b in pairs
    }
    gaps = {key: register_gaps(prep.boot, key, scores) for key in scores}
    reps = prep.boot.run()
    views = prep.views(reps, warmups or {})
    comparisons: dict[str, Comparison] = {}
    for a, b in pairs:
        key = comparison_key(a, b)
        x, y = views[a], views[b]
        metrics = comparison_metrics(
            x, y, paired=True, margins=margins, matched=prep.matched[(a, b)]
        )
        if contaminated_cache:
            # the mirrored call's cache hits are not its own, and cost is priced from them
            metrics["cache_hit_ratio_delta"] = metrics["cache_hit_improvement"] = None
            metrics["cost_ratio"] = None
        if _clients(t, x.arm) != _clients(t, y.arm):
            # SDK clocks of different clients measure different code, not the APIs
            metrics["sdk_ttft_p50_ratio"] = metrics["sdk_total_p50_ratio"] = None
        saturated, not_judged = decide.latency_saturation(
            (x.summary.saturation, y.summary.saturation)
        )
        if not_judged:
            _undecide_latency(metrics)
        latency = "ttft" if metrics["ttft_p50_ratio"] is not None else "total"
        comparisons[key] = Comparison(
            a=a,
            b=b,
            replicate=scores[key].replicate,
            n_pairs=prep.boot.conversations(set(x.arm.units.tolist()) & set(y.arm.units.tolist())),
            **metrics,
            similarity=_decide_similarity(
                similarity_summary(key, scores, reps, gaps[key], prep.boot),
                margins.similarity,
            ),
            power=power_info(
                x,
                y,
                metrics[f"{latency}_p50_ratio"],
                f"{latency}_p50_ratio",
                f"{latency}_ms",
                effect_size=power_effect,
                power=power,
                margin=margins.latency_pct / 100,
            ),
            cache_contaminated=contaminated_cache,
            client_saturated=saturated,
            latency_not_judged=not_judged,
            min_repeats=decide.min_repeats(len(set(t.prompt_id))),
        )
    return ScenarioSummary(
        name=name,
        observations=len(t),
        arms={a: v.summary for a, v in views.items()},
        comparisons=comparisons,
        claims=evaluate_claims(comparisons, emulator_profile=emulator_profile, margins=margins),
        conversation_state=conversation_state(
            t,
            prep.arms,
            costs_per_row(t, book, without_nonce=True),
            comparisons,
            emulator_profile=emulator_profile,
            margins=margins,
        ),
    )


def _undecide_latency(metrics: dict[str, Any]) -> None:
    """Latency verdicts of a pair timed on a saturated client become 'unclear'."""
    for name in decide.LATENCY_METRICS:
        e = metrics.get(name)
        if e is not None and e.decision not in (None, "too_few_samples"):
            metrics[name] = e.model_copy(update={"decision": "unclear", "significant": None})


def _decide_similarity(sim: Similarity, margin: float) -> Similarity:
    """Each kind's gap below its A/A floor decided by the one rule (positive = less alike), over
    the conversations behind that kind's pairs."""
    rule = decide.Rule("delta", margin)
    update: dict[str, Any] = {}
    for name in ("text", "json_", "tool_calls", "semantic"):
        st = getattr(sim, name)
        gap = st.below_noise_floor if st is not None else None
        if st is None or gap is None:
            continue
        n = gap.n_pairs  # conversations behind this kind's pairs
        ci = gap.ci95 if n >= decide.MIN_CONVERSATIONS else None
        gap = gap.model_copy(
            update={
                "ci95": ci,
                "significant": decide.excludes(ci, 0.0),
                "decision": decide.decide(ci, n, rule),
                "margin": margin,
            }
        )
        update[name] = st.model_copy(update={"below_noise_floor": gap})
    return sim.model_copy(update=update) if update else sim


@gc_paused()
def analyze_table(
    table: ObservationTable,
    meta: RunMeta | None = None,
    *,
    book: PriceBook | None = None,
    seed: int = 0,
    resamples: int = stats.DEFAULT_RESAMPLES,
    schemas: Schemas | None = None,
    embedder: Embedder | None = None,
    power_effect: float = 0.25,
    contaminated_cache: Collection[str] | None = None,
    semantic_scenarios: Collection[str] | None = None,
    margins: Mapping[str, decide.Margins] | None = None,
) -> Summary:
    """Analyse observations already in columns (pure apart from price lookups).

    ``contaminated_cache``: scenarios whose cache figures are not clean (shadow pairs); by
    default every scenario of a shadow run (``meta.shadow``), none otherwise.
    ``semantic_scenarios``: the scenarios ``embedder`` scores (default: all).
    """
    if seed < 0 or resamples < 1:
        raise HarnessError(
            f"bootstrap seed must be ≥ 0 and resamples ≥ 1 (got {seed}, {resamples})"
        )
    if contaminated_cache is None:
        contaminated_cache = set(table.scenario) if meta and meta.shadow is not None else ()
    contaminated = frozenset(contaminated_cache)
    semantic = None if semantic_scenarios is None else frozenset(semantic_scenarios)
    margins = margins or {}
    table = table.measured()
    if meta is not None and meta.cache_nonces:
        table = with_nonce_tokens(table, meta.cache_nonces)
    when = datetime.fromtimestamp(meta.created_at, tz=UTC) if meta else None
    book = book or PriceBook(when=when, recorded=meta.prices if meta else None)
    profile = (meta.emulator_profile or "unnamed") if meta and meta.is_emulator else None
    scenarios = []
    warnings: list[str] = []
    warmup_total = int(table.warmup.sum())
    for name, rows in sorted(_scenario_rows(table).items()):
        warm = rows[table.warmup[rows]]
        warmups: dict[str, int] = {}
        for i in warm.tolist():
            warmups[table.arm[i]] = warmups.get(table.arm[i], 0) + 1
        measured = table.take(rows[~table.warmup[rows]])
        scenarios.append(
            scenario_summary(
                measured,
                name,
                book=book,
                seed=seed,
                resamples=resamples,
                warmups=warmups,
                schemas=schemas,
                embedder=embedder if semantic is None or name in semantic else None,
                emulator_profile=profile,
                power_effect=power_effect,
                contaminated_cache=name in contaminated,
                margins=margins.get(name, decide.DEFAULT_MARGINS),
            )
        )
        if name in contaminated and scenarios[-1].comparisons:
            warnings.append(
                f"scenario {name}: cache figures are contaminated (shadow pairs: the mirrored "
                "call follows the live one with the same prompt prefix, and production prompts "
                "carry no cache nonce) — cache-hit and cost comparisons and the caching and "
                "cost claims are not assessed; with prompts of 1,024 tokens or more, latency "
                "ratios also favour the mirrored side"
            )
    warnings.extend(saturation_warnings(scenarios))
    run_ids = sorted(set(table.run_id))
    priced = [ModelPriceInfo.model_validate(p, from_attributes=True) for p in book.resolved()]
    return Summary(
        schema_version=SUMMARY_SCHEMA_VERSION,
        harness_version=__version__,
        run_id=meta.run_id if meta else (run_ids[0] if len(run_ids) == 1 else "unknown"),
        target=meta.target if meta else "unknown",
        target_label=meta.target_label if meta else "unknown",
        is_emulator=bool(meta and meta.is_emulator),
        emulator_profile=profile,
        replay=list(meta.replay) if meta else [],
        observations=len(table),
        warmup_excluded=warmup_total,
        bootstrap=_bootstrap_info(
            seed, resamples, BOOTSTRAP_UNIT, f"{stats.CORRECTION}; {stats.COST_WIDENING}"
        ),
        pricing=PricingInfo(
            source=book.source,
            genai_prices_version=book.genai_prices_version,
            override_file=str(book.override_file) if book.override_file else None,
            models=priced,
        ),
        warnings=[*book.warnings, *warnings],
        scenarios=scenarios,
    )


#: Share of a scenario's timed requests with late timestamps (not from a saturated client)
#: above which the run is flagged as timed on a busy machine.
LATE_SHARE_BOUND = 0.10


def saturation_warnings(scenarios: Sequence[ScenarioSummary]) -> list[str]:
    """Lines for scenarios timed on a saturated client or a busy machine (one each)."""
    out = []
    for sc in scenarios:
        sat = [a.saturation for a in sc.arms.values() if a.saturation is not None]
        if not sat:
            continue
        timed = sum(x.timed_requests for x in sat)
        flagged = sum(x.saturated for x in sat)
        late = sum(x.late for x in sat) - flagged
        worst = fmt.ms(max(x.lag_max_ms for x in sat))
        if flagged:
            out.append(
                f"scenario {sc.name}: {flagged} of {timed} requests were timed while the "
                f"client's own event loop was saturated (late by up to {worst}): their "
                "latencies include the client's queue — rerun with --client raw or a lower "
                "--concurrency before trusting latency verdicts"
            )
        if late > LATE_SHARE_BOUND * timed:
            out.append(
                f"scenario {sc.name}: {late} of {timed} requests were timed while the client's "
                f"event loop ran late (up to {worst}) without being busy itself: the machine "
                "was busy (another process held the CPU), so their latencies include "
                "scheduling delay — rerun on a quieter machine before trusting latency verdicts"
            )
    return out


def run_scenarios(meta: RunMeta) -> list[Scenario]:
    """The run's scenario files, as they were at run time.

    Only files that still load and hash as they did at run time count (an edited scenario may
    not be the one the run sent); anything else is skipped, not an error.
    """
    return _run_scenarios(meta)[0]


def _run_scenarios(meta: RunMeta) -> tuple[list[Scenario], list[str]]:
    """:func:`run_scenarios`, and a summary warning for each scenario it had to skip."""
    from harness.scenario.load import load_scenario

    out, notes = [], []
    for entry in meta.scenarios:
        name = entry.get("name") or entry.get("path", "?")
        unapplied = (
            "its margins, output schemas (schema validity), prompt weights and reference "
            "answers were not applied: defaults used"
        )
        try:
            scenario = load_scenario(Path(entry["path"]))
        except (HarnessError, OSError, KeyError):
            notes.append(
                f"scenario {name}: its file {entry.get('path', '?')} no longer loads, so "
                f"{unapplied}"
            )
            continue
        if scenario_changed(entry.get("sha256"), scenario, unrecorded=True):
            notes.append(
                f"scenario {name}: its file {entry['path']} changed since the run, so "
                f"{unapplied} — restore the file as it was to apply them"
            )
        else:
            out.append(scenario)
    return out, notes


def scenario_schemas(
    meta: RunMeta, scenarios: Sequence[Scenario] | None = None
) -> dict[tuple[str, str], Mapping[str, Any]]:
    """Output schemas of the run's scenario files, for schema-validity of structured outputs."""
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for scenario in run_scenarios(meta) if scenarios is None else scenarios:
        for prompt in scenario.prompts:
            output = scenario.output_for(prompt)
            if output is not None and not isinstance(output, str):
                out[(scenario.name, prompt.id)] = output.json_schema
    return out


def run_price_book(meta: RunMeta | None, price_overrides: Path | None = None) -> PriceBook:
    """The prices to analyse a run at: the user's overrides, then what the run recorded."""
    overrides = load_price_overrides(price_overrides) if price_overrides else None
    return PriceBook(
        overrides,
        override_file=price_overrides,
        when=datetime.fromtimestamp(meta.created_at, tz=UTC) if meta else None,
        recorded=meta.prices if meta else None,
    )


def scenario_margins(
    meta: RunMeta, scenarios: Sequence[Scenario] | None = None
) -> dict[str, decide.Margins]:
    """Equivalence margins of the run's scenario files (``margins:``; defaults otherwise)."""
    return {
        s.name: s.margins.to_margins()
        for s in (run_scenarios(meta) if scenarios is None else scenarios)
    }


def analyze_run(
    run_dir: Path | LoadedRun,
    *,
    price_overrides: Path | None = None,
    seed: int = 0,
    resamples: int = stats.DEFAULT_RESAMPLES,
    schemas: Schemas | None = None,
    embedder: Embedder | None = None,
    margins: Mapping[str, decide.Margins] | None = None,
) -> Summary:
    """Analyse ``runs/<run-id>/`` (meta.json + observations.jsonl) into a Summary.

    Given a :class:`LoadedRun` (see :func:`load_run`), nothing is read again.
    """
    run = run_dir if isinstance(run_dir, LoadedRun) else load_run(run_dir)
    meta = run.meta
    scenarios, skipped = _run_scenarios(meta)
    if schemas is None:
        schemas = scenario_schemas(meta, scenarios)
    if margins is None:
        margins = scenario_margins(meta, scenarios)
    semantic: Collection[str] | None = None
    notes = list(skipped)
    if embedder is None:
        embedder, semantic, semantic_notes = semantic_backend(scenarios)
        notes += semantic_notes
    book = run_price_book(meta, price_overrides)
    summary = analyze_table(
        run.table,
        meta,
        book=book,
        seed=seed,
        resamples=resamples,
        schemas=schemas,
        embedder=embedder,
        contaminated_cache=run.contaminated,
        semantic_scenarios=semantic,
        margins=margins,
    )
    traffic = scenario_traffic(scenarios)
    if any(v.weight > 1 or v.reference is not None for v in traffic.values()):
        measured = run.table.measured()
        if meta.cache_nonces:
            measured = with_nonce_tokens(measured, meta.cache_nonces)
        measured = measured.take(np.flatnonzero(~measured.warmup))
        summary = apply_traffic(
            summary,
            measured,
            costs_per_row(measured, book),
            traffic,
            billed=costs_per_row(measured, book, without_nonce=True),
            missed=costs_per_row(measured, book, without_nonce=True, missed=True),
            seed=seed,
            resamples=resamples,
            margins=margins,
        )
    if notes:
        summary = summary.model_copy(update={"warnings": [*summary.warnings, *notes]})
    return summary


def scenario_traffic(scenarios: Sequence[Scenario]) -> dict[tuple[str, str], PromptTraffic]:
    """Each prompt's weight and reference answer, by (scenario, prompt id)."""
    return {
        (sc.name, p.id): PromptTraffic(weight=p.weight, reference=p.reference)
        for sc in scenarios
        for p in sc.prompts
    }


def current_summary(
    run_dir: Path,
    *,
    run: LoadedRun | None = None,
    price_overrides: Path | None = None,
    save: bool = True,
    same_prices: bool = False,
) -> tuple[Summary, bool]:
    """``run_dir``'s summary.json, or — when it has none, one of an older schema whose
    figures mean something else now, ``price_overrides`` are given, or (``same_prices``) it
    was priced with an override file and none is given now (a summary is priced when written:
    every figure of a gate must use the same prices) — the run analysed anew
    from its observations (saved when ``save``); the flag says it was analysed. Without
    observations a stale summary is the one-line :class:`~harness.errors.StaleSummaryError`."""
    from harness.errors import StaleSummaryError
    from harness.rundir import SUMMARY_FILE

    if price_overrides is None and (run_dir / SUMMARY_FILE).is_file():
        try:
            stored = read_summary(run_dir)
        except StaleSummaryError:
            if run is None and not has_observations(run_dir):
                raise
        else:
            # A summary written by `analyze --prices F` is priced at F; without --prices the
            # gate's baseline comparison uses the recorded prices, so this one must too.
            if (
                not same_prices
                or stored.pricing.override_file is None
                or (run is None and not has_observations(run_dir))
            ):
                return stored, False
    summary = analyze_run(run if run is not None else run_dir, price_overrides=price_overrides)
    if save:
        write_summary(run_dir, summary)
    return summary, True


def has_observations(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds observations (a file or a shadow run's shards)."""
    from harness.rundir import SHARD_GLOB

    return (run_dir / OBSERVATIONS_FILE).is_file() or any(run_dir.glob(SHARD_GLOB))


def semantic_backend(
    scenarios: Sequence[Scenario],
) -> tuple[Embedder | None, frozenset[str], list[str]]:
    """The embedder for the scenarios whose ``similarity.method`` lists ``semantic``, those
    scenarios, and a note for each when the optional backend cannot load (lexical only)."""
    from harness.analysis.semantic import SemanticUnavailable, load_embedder

    wanted = frozenset(sc.name for sc in scenarios if "semantic" in sc.similarity.method)
    if not wanted:
        return None, wanted, []
    try:
        return load_embedder(), wanted, []
    except SemanticUnavailable as exc:
        return (
            None,
            frozenset(),
            [
                f"scenario {name}: semantic similarity was asked for but {exc}; only lexical "
                "(word) similarity is reported"
                for name in sorted(wanted)
            ],
        )


# --- between runs -----------------------------------------------------------------------------

RunInput = ObservationTable | Path | Summary


def _as_table(run: ObservationTable | Path) -> ObservationTable:
    if isinstance(run, ObservationTable):
        return run
    path = run / OBSERVATIONS_FILE if run.is_dir() else run
    return load_table(path)


def _summary_effects(a: Summary, b: Summary) -> dict[str, dict[str, RunArmComparison]]:
    """Point ratios only: a summary keeps no samples, so there is no interval to give."""
    out: dict[str, dict[str, RunArmComparison]] = {}
    b_scen = {s.name: s for s in b.scenarios}
    for sa in a.scenarios:
        sb = b_scen.get(sa.name)
        if sb is None:
            continue
        arms = {}
        for arm, xa in sa.arms.items():
            xb = sb.arms.get(arm)
            if xb is None:
                continue
            fields: dict[str, Any] = {}
            for name, col in (
                ("ttft_p50_ratio", "ttft_ms"),
                ("total_p50_ratio", "total_ms"),
                ("cold_ttft_ratio", "cold_ttft_ms"),
            ):
                la, lb = getattr(xa, col), getattr(xb, col)
                v = stats.safe_ratio(la.p50 if la else None, lb.p50 if lb else None)
                fields[name] = (
                    None
                    if v is None
                    else {"value": v, "ci95": None, "significant": None, "n_pairs": min(la.n, lb.n)}
                )
            arms[arm] = RunArmComparison.model_validate(fields)
        out[sa.name] = arms
    return out


def compare_runs(
    a: RunInput,
    b: RunInput | Sequence[ObservationTable | Path],
    *,
    seed: int = 0,
    resamples: int = stats.DEFAULT_RESAMPLES,
    book: PriceBook | None = None,
    run_spread: Mapping[str, float] | None = None,
) -> RunComparison:
    """Compare the same arms across runs (a = candidate, b = baseline: one run, or several
    runs as a sequence; ratios a/b).

    Paired by prompt × turn × repeat index, resampled by conversation, with run-level variance
    (estimated from a baseline of several runs, assumed for one; ``run_spread`` sets it): see
    :mod:`harness.analysis.between`. Given summaries instead of observations, only point
    ratios of medians are available (no interval).
    """
    from harness.analysis.between import BOOTSTRAP_UNIT as BETWEEN_UNIT
    from harness.analysis.between import compare_tables

    if isinstance(a, Summary) or isinstance(b, Summary):
        if not (isinstance(a, Summary) and isinstance(b, Summary)):
            raise HarnessError("compare_runs: give two summaries or two sets of observations")
        return RunComparison(
            a_run_id=a.run_id,
            b_run_id=b.run_id,
            intervals=False,
            bootstrap=None,
            scenarios=_summary_effects(a, b),
        )
    if book is None:
        # Both sides at the candidate's prices: a comparison of runs is about what they did.
        meta_a = read_meta(a) if isinstance(a, Path) and a.is_dir() else None
        book = run_price_book(meta_a)
    ta = _as_table(a).measured()
    runs = [b] if isinstance(b, ObservationTable | Path) else list(b)
    tbs = [_as_table(r).measured() for r in runs]
    ta = ta.take(np.flatnonzero(~ta.warmup))
    tbs = [t.take(np.flatnonzero(~t.warmup)) for t in tbs]
    scenarios, spread = compare_tables(
        ta, tbs, book=book, seed=seed, resamples=resamples, spread=run_spread
    )
    ids_a = sorted(set(ta.run_id))
    ids_b = sorted({r for t in tbs for r in t.run_id})
    return RunComparison(
        a_run_id=",".join(ids_a),
        b_run_id=",".join(ids_b),
        intervals=True,
        bootstrap=_bootstrap_info(seed, resamples, BETWEEN_UNIT, stats.CORRECTION),
        scenarios=scenarios,
        run_spread=spread,
    )


def _bootstrap_info(seed: int, resamples: int, unit: str, correction: str) -> BootstrapInfo:
    """How the intervals were drawn: within and between runs they differ in the unit, and in
    the cost widening that only the within-run intervals have."""
    return BootstrapInfo(
        seed=seed,
        resamples=resamples,
        confidence=stats.CONFIDENCE,
        unit=unit,
        method=BOOTSTRAP_METHOD,
        min_conversations=decide.MIN_CONVERSATIONS,
        correction=correction,
    )


# --- synthetic runs (tests, demos, benchmarks) ------------------------------------------------


@dataclass(frozen=True)
class SyntheticProfile:
    """Ground truth of a synthetic run, with the emulator's knobs (latency, caching, divergence).

    Latencies are lognormal (``sigma``) around ``ttft_ms`` with a slow multiplicative drift over
    send order; cold (turn 1) requests are ``cold_factor`` slower on chat and a further
    ``responses_cold_ratio`` on Responses. Warm turns cache ``chat_cache_fraction`` of chat's
    input; Responses caches ``1 + responses_cache_advantage`` times as much. Responses replaces
    a fraction ``divergence`` of chat's words.
    """

    ttft_ms: float = 300.0
    responses_ttft_factor: float = 1.0
    cold_factor: float = 1.5
    responses_cold_ratio: float = 1.0
    sigma: float = 0.3
    drift: float = 0.1
    system_tokens: int = 1500
    turn_tokens: int = 200
    output_tokens: int = 60
    chat_cache_fraction: float = 0.5
    responses_cache_advantage: float = 0.0
    divergence: float = 0.0
    error_rate: float = 0.0
    model: str = "gpt-4.1-mini"
    words: int = 60


def synthetic_observations(
    profile: SyntheticProfile,
    *,
    arms: tuple[str, ...] = ("chat", "responses", "chat#2"),
    prompts: int = 3,
    turns: int = 2,
    repeats: int = 30,
    seed: int = 0,
    run_id: str = "synthetic",
    scenario: str = "synthetic",
    warmup: int = 0,
) -> list[Observation]:
    """Observations of a synthetic run, interleaved in randomized blocks like the runner's."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(2000)]
    texts = {
        (p, k): [vocab[j] for j in rng.integers(0, len(vocab), profile.words)]
        for p in range(prompts)
        for k in range(1, turns + 1)
    }
    n_total = (repeats + warmup) * prompts * turns * len(arms)
    drift = profile.drift * np.sin(np.linspace(0, 2 * np.pi, n_total) + rng.uniform(0, 6.3))
    out: list[Observation] = []
    for rep in range(repeats + warmup):
        for p in range(prompts):
            for turn in range(1, turns + 1):
                for arm in rng.permutation(np.array(arms)).tolist():
                    out.append(
                        _synthetic_one(
                            profile,
                            rng,
                            texts[(p, turn)],
                            arm,
                            p,
                            turn,
                            rep - warmup,
                            float(drift[len(out)]),
                            len(out),
                            run_id,
                            scenario,
                        )
                    )
    return out


def _synthetic_one(
    pr: SyntheticProfile,
    rng: np.random.Generator,
    words: list[str],
    arm: str,
    prompt: int,
    turn: int,
    repeat: int,
    drift: float,
    order: int,
    run_id: str,
    scenario: str,
) -> Observation:
    api = Arm.parse(arm).api
    cold = turn == 1
    factor = pr.cold_factor if cold else 1.0
    if api == "responses":
        factor *= pr.responses_cold_ratio if cold else pr.responses_ttft_factor
    ttft = pr.ttft_ms * factor * math.exp(rng.normal(0.0, pr.sigma) + drift)
    total = ttft + pr.output_tokens * 8.0 * math.exp(rng.normal(0.0, 0.1))
    input_tokens = pr.system_tokens + turn * pr.turn_tokens + (turn - 1) * pr.output_tokens
    cached = 0 if cold else int(pr.chat_cache_fraction * input_tokens)
    if api == "responses":
        cached = min(input_tokens, round(cached * (1.0 + pr.responses_cache_advantage)))
    text = list(words)
    if api == "responses" and pr.divergence > 0:
        k = round(pr.divergence * len(text))
        for j in rng.choice(len(text), size=k, replace=False).tolist():
            text[j] = f"x{rng.integers(10**9)}"
    failed = bool(rng.random() < pr.error_rate)
    base: dict[str, Any] = dict(
        run_id=run_id,
        scenario=scenario,
        prompt_id=f"p{prompt}",
        arm=arm,
        api=api,
        turn=turn,
        repeat=max(repeat, 0),
        conversation=f"p{prompt}/{arm}/{repeat}",
        cold=cold,
        warmup=repeat < 0,
        model=pr.model,
        stream=True,
        order=order,
        started_at=1.78e9 + order,
    )
    if failed:
        return Observation(**base, status=500, ok=False, error_type="server_error", finish="error")
    return Observation(
        **base,
        status=200,
        ok=True,
        finish="completed",
        ttfb_ms=ttft * 0.4,
        ttft_ms=ttft,
        first_output_ms=ttft,  # no reasoning streams first: the first output is the first token
        total_ms=total,
        sdk_ttfb_ms=ttft * 0.4 + 1.0,
        sdk_ttft_ms=ttft + 3.0,
        sdk_total_ms=total + (15.0 if api == "responses" else 8.0),
        service_tier="default",
        usage=Usage(
            input_tokens=input_tokens, cached_tokens=cached, output_tokens=pr.output_tokens
        ),
        output_text=" ".join(text),
    )


def write_synthetic_run(
    run_dir: Path, observations: list[Observation], *, emulator_profile: str | None = None
) -> Path:
    """Lay out ``run_dir`` (meta.json + observations.jsonl) as the runner would."""
    run_dir.mkdir(parents=True, exist_ok=True)
    first = observations[0]
    meta = RunMeta(
        run_id=first.run_id,
        created_at=first.started_at,
        seed=0,
        target="emulator" if emulator_profile else "synthetic",
        is_emulator=emulator_profile is not None,
        emulator_profile=emulator_profile,
        planned_requests=len(observations),
        prices=PriceBook(when=datetime.fromtimestamp(first.started_at, tz=UTC)).snapshot(
            {(o.model, o.service_tier) for o in observations}
        ),
    )
    write_meta(run_dir, meta)
    with ObservationWriter(run_dir / OBSERVATIONS_FILE, group=10_000) as writer:
        for obs in observations:
            writer.write(obs)
    return run_dir
