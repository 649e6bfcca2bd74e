"""``harness plan``: the dry run — every request a run would send, as a table or JSON Lines.

The plan itself is :mod:`harness.runner.plan`'s; this module only shows it (and the power
estimate, from :func:`harness.analysis.stats.repeats_for_power`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from harness import fmt
from harness.cli.common import call_with_options

if TYPE_CHECKING:
    from harness.runner.plan import Plan, PlannedRequest
    from harness.scenario.load import Scenario

__all__ = [
    "add_arguments",
    "claim_lines",
    "parse_effect",
    "parse_target_power",
    "plan_sigma",
    "power_lines",
    "print_plan",
    "run",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario_file", type=Path, metavar="SCENARIO")
    p.add_argument("--repeats", type=int, default=None, help="override the scenario's repeats")
    p.add_argument("--seed", type=int, default=0, help="run seed (cache nonces, arm order)")
    p.add_argument(
        "--json",
        dest="as_json",
        action="store_true",
        help="one JSON object per request (JSON Lines) instead of a table",
    )
    p.add_argument(
        "--power",
        default=None,
        metavar="EFFECT",
        help="also say how many repeats detect a change of EFFECT (e.g. 25%%; a bare number "
        "≥ 1 is per cent) in a p50 ratio: the 95 %% interval clearing the ±10 %% latency "
        "margin, the rule the gates and verdicts use",
    )
    p.add_argument(
        "--target-power",
        default=None,
        metavar="P",
        help="with --power: the chance of detecting EFFECT to plan for (default 80%%)",
    )
    p.add_argument(
        "--sigma",
        dest="sigma_log",
        type=float,
        default=None,
        metavar="S",
        help="log-spread of latencies for --power (default 0.4: what runs of the emulator's "
        "parity profile report as power.sigma_log, cold and warm turns pooled)",
    )
    p.add_argument(
        "--sigma-from",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="take --power's log-spread from a previous run of your target (the largest "
        "power.sigma_log of its summary) instead",
    )

    p.add_argument(
        "--claims-from",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="also say how many repeats let each migration-guide claim be supported, were it "
        "true (mid-range), in --target-power of runs (default 80%%) — scaled from the interval "
        "widths of RUN_DIR, a previous (pilot) run of this scenario on your target",
    )


def run(args: argparse.Namespace) -> int:
    call_with_options(print_plan, args)
    return 0


def plan_sigma(
    sigma_log: float | None, sigma_from: Path | None, scenario: str | None = None
) -> tuple[float, str]:
    """The log-spread ``--power`` assumes, and where it comes from: ``--sigma``, a previous
    run (``--sigma-from``: the largest ``power.sigma_log`` of its summary, this scenario's
    when it has it), else the emulator's parity profile as measured."""
    from harness.analysis.stats import PARITY_SIGMA_LOG
    from harness.errors import HarnessError

    if sigma_log is not None and sigma_from is not None:
        raise HarnessError("--sigma and --sigma-from: give one of them")
    if sigma_log is not None:
        if not sigma_log > 0:
            raise HarnessError(f"--sigma {sigma_log:g}: must be above 0, e.g. 0.4")
        return sigma_log, "given"
    if sigma_from is None:
        return PARITY_SIGMA_LOG, "the emulator's parity profile, measured"
    from harness.analysis.analyze import current_summary
    from harness.cli.common import require_run_dir

    require_run_dir(sigma_from)
    summary = current_summary(sigma_from, save=False)[0]
    own = [sc for sc in summary.scenarios if sc.name == scenario] or summary.scenarios
    sigmas = [
        c.power.sigma_log
        for sc in own
        for c in sc.comparisons.values()
        if c.power is not None and c.power.sigma_log is not None
    ]
    if not sigmas:
        raise HarnessError(
            f"{sigma_from}: its summary reports no latency spread (power.sigma_log) — give a "
            "run with successful requests in two arms, or --sigma S"
        )
    return max(sigmas), f"from run {summary.run_id}"


def _percent(text: str, option: str, example: str) -> float:
    """``"10%"``, ``"10"`` or ``"0.1"`` → 0.1: a trailing % or a bare number ≥ 1 is per cent,
    a number below 1 a fraction (``--power 10`` meant 10 %, and said "below 1,000 %")."""
    from harness.errors import HarnessError

    value = text.strip()
    try:
        x = float(value.removesuffix("%"))
    except ValueError:
        raise HarnessError(f"{option} {text!r}: not a percentage — write e.g. {example}") from None
    return x / 100 if value.endswith("%") or abs(x) >= 1 else x


def parse_effect(text: str) -> float:
    """``--power``: ``"25%"``, ``"25"`` or ``"0.25"`` → 0.25 (a relative change to detect)."""
    from harness.errors import HarnessError

    effect = _percent(text, "--power", "25% (or 25, or 0.25)")
    if not 0 < effect <= 10:
        raise HarnessError(
            f"--power {text!r}: the change to detect must be a slowdown from just above 0 % "
            "to 1,000 % — e.g. 25% (a bare number such as 25 means 25 %)"
        )
    return effect


def parse_target_power(text: str) -> float:
    """``--target-power``: ``"90%"``, ``"90"`` or ``"0.9"`` → 0.9."""
    from harness.errors import HarnessError

    p = _percent(text, "--target-power", "90%")
    if not 0.5 <= p < 1:
        raise HarnessError(
            f"--target-power {text!r}: must be from 50 % to below 100 % — e.g. 80% or 90%"
        )
    return p


def power_lines(
    scenario: Scenario,
    plan: Plan,
    effect: float,
    sigma_log: float,
    target_power: float | None = None,
    sigma_source: str = "given",
) -> list[str]:
    """How many repeats make a true ``effect`` slowdown of a p50 ratio fail the gate (95 %
    interval wholly beyond the ±10 % latency margin) with probability ``target_power``:
    within a run (arm vs arm), and against a one-run baseline (whose assumed run-to-run
    spread no number of repeats removes)."""
    from harness.analysis.between import ASSUMED_RUN_SPREAD
    from harness.analysis.stats import DEFAULT_TARGET_POWER, LATENCY_MARGIN, repeats_for_power
    from harness.errors import HarnessError

    power = DEFAULT_TARGET_POWER if target_power is None else target_power
    by_arm: dict[str, int] = {}
    for conv in plan.conversations:
        if conv.warmup or conv.repeat != 1:
            continue
        by_arm[conv.arm] = by_arm.get(conv.arm, 0) + sum(
            1 for step in conv.steps if step.kind == "user"
        )
    per_repeat = min(by_arm.values(), default=1)
    cold_per_repeat = _conversations_per_repeat(plan)  # one cold request per conversation
    spread = ASSUMED_RUN_SPREAD["ttft_p50_ratio"]
    try:
        need_all = repeats_for_power(
            effect, sigma_log, samples_per_repeat=per_repeat, power=power, margin=LATENCY_MARGIN
        )
        need_cold = repeats_for_power(
            effect,
            sigma_log,
            samples_per_repeat=cold_per_repeat,
            power=power,
            margin=LATENCY_MARGIN,
        )
        need_base = repeats_for_power(
            effect,
            sigma_log,
            samples_per_repeat=per_repeat,
            power=power,
            margin=LATENCY_MARGIN,
            run_var=2 * spread**2,
        )
    except ValueError:
        raise HarnessError(
            f"--power {fmt.pct(effect)}: a true change of {fmt.pct(effect)} never puts the "
            f"interval beyond the ±{fmt.pct(LATENCY_MARGIN)} latency margin the gates and "
            "verdicts use, at any number of repeats — ask for a larger change, e.g. 25%"
        ) from None
    base = (
        f"repeats ≥ {need_base}"
        if need_base is not None
        else "not reachable: the run-to-run spread alone is too large — save a baseline of "
        "several runs, or gate within one run"
    )
    return [
        f"power: for a true {fmt.pct(effect)} slowdown of a p50 ratio to fail the gate "
        f"(95 % interval wholly above the +{fmt.pct(LATENCY_MARGIN)} margin) in "
        f"{fmt.pct(power)} of runs (target power; α 0.05), assuming log-spread "
        f"σ = {sigma_log:g} ({sigma_source}):",
        f"  TTFT/total p50 over all turns ({per_repeat} samples per arm per repeat): "
        f"repeats ≥ {need_all} (scenario has {plan.repeats})",
        f"  cold (turn 1) TTFT ({cold_per_repeat} per arm per repeat): repeats ≥ {need_cold}",
        f"  against a one-run baseline (run-to-run spread {fmt.pct(spread)} assumed): {base}",
        "  (σ: --sigma-from RUN_DIR takes it from a previous run of your target, or --sigma S)",
    ]


def _conversations_per_repeat(plan: Plan) -> int:
    """Conversations one repeat adds to every arm (the fewest, when arms differ)."""
    per_arm = Counter(c.arm for c in plan.conversations if not c.warmup and c.repeat == 1)
    return min(per_arm.values(), default=1)


def claim_lines(
    scenario: Scenario, plan: Plan, run_dir: Path, target_power: float | None = None
) -> list[str]:
    """Repeats at which each of the guide's claims, were its truth mid-range, is supported in
    ``target_power`` of runs, scaled from a previous run's intervals
    (:func:`harness.analysis.claims.repeats_to_support`)."""
    from harness.analysis.analyze import current_summary
    from harness.analysis.claims import CLAIMED_TEXT, repeats_to_support
    from harness.analysis.stats import DEFAULT_TARGET_POWER
    from harness.cli.common import require_run_dir
    from harness.errors import HarnessError

    power = DEFAULT_TARGET_POWER if target_power is None else target_power
    require_run_dir(run_dir)
    summary = current_summary(run_dir, save=False)[0]
    own = [sc for sc in summary.scenarios if sc.name == scenario.name]
    if not own:
        names = ", ".join(sc.name for sc in summary.scenarios) or "none"
        raise HarnessError(
            f"--claims-from {run_dir}: the run holds no scenario {scenario.name!r} (it has "
            f"{names}) — give a run of this scenario"
        )
    sc = own[0]
    need = repeats_to_support(
        sc.claims, sc.comparisons, _conversations_per_repeat(plan), power=power
    )
    lines = [
        f"claims: repeats at which each claim, were it true (mid-range), is supported in "
        f"{fmt.pct(power)} of runs — from the interval widths of run {summary.run_id}:"
    ]
    for name, claim in sc.claims.items():
        n = need.get(name)
        words = claim.claimed or CLAIMED_TEXT.get(name, name)
        if n is not None:
            how = f"repeats ≥ {n} (scenario has {plan.repeats})"
            if claim.claimed_range is not None and claim.claimed_range[0] <= 0:
                how += "; taking this run's estimate as the truth"
        elif claim.contaminated:
            how = "cannot be sized: the run's cache figures are contaminated (shadow run)"
        elif claim.ci95 is None or claim.claimed_range is None:
            how = f"cannot be sized: the run has no interval for it ({claim.note.split(';')[0]})"
        else:
            how = "cannot be sized: the run's estimate is not below the bound, no truth to plan for"
        lines.append(f"  {name} ({words}): {how}")
    sized = [n for n in need.values() if n is not None]
    if sized:
        lines.append(f"  all claims at once: repeats ≥ {max(sized)}")
    return lines


def print_plan(
    scenario_file: Path | str,
    *,
    repeats: int | None = None,
    seed: int = 0,
    as_json: bool = False,
    power: str | None = None,
    sigma_log: float | None = None,
    target_power: str | None = None,
    sigma_from: Path | None = None,
    claims_from: Path | None = None,
) -> None:
    """``harness plan``: JSON Lines (one object per request) or a table with counts and
    estimated input tokens. Raises ScenarioError for an invalid file."""
    from harness.errors import HarnessError, ScenarioError
    from harness.runner.plan import (
        build_plan,
        dry_run,
        model_warnings,
        translation_notes,
        translation_problems,
    )
    from harness.scenario.load import load_scenario

    effect = parse_effect(power) if power is not None else None
    goal = parse_target_power(target_power) if target_power is not None else None
    if goal is not None and effect is None and claims_from is None:
        raise HarnessError(
            "--target-power needs --power EFFECT (e.g. --power 25%) or --claims-from RUN_DIR"
        )
    scenario = load_scenario(scenario_file)
    sigma = plan_sigma(sigma_log, sigma_from, scenario.name) if effect is not None else None
    problems = translation_problems(scenario)
    if problems:
        raise ScenarioError(problems)
    plan = build_plan(scenario, repeats=repeats, seed=seed)
    # before any output: a bad RUN_DIR is a one-line error, not a table and then an error
    claims = claim_lines(scenario, plan, claims_from, goal) if claims_from is not None else []
    try:
        if as_json:
            for planned in dry_run(plan):
                record = planned.summary()
                record["kwargs"] = planned.kwargs()
                seed_items = planned.conversation_create_items()
                if seed_items is not None:
                    record["conversation_create"] = {"items": seed_items}
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            _print_table(scenario, plan)
        for line in translation_notes(scenario) + model_warnings(scenario):
            print(line, file=sys.stderr if as_json else sys.stdout)
        if effect is not None and sigma is not None:
            for line in power_lines(scenario, plan, effect, sigma[0], goal, sigma[1]):
                print(line, file=sys.stderr if as_json else sys.stdout)
        for line in claims:
            print(line, file=sys.stderr if as_json else sys.stdout)
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone: stop quietly, and keep the interpreter from
        # complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _print_table(scenario: Scenario, plan: Plan) -> None:
    from rich.console import Console
    from rich.table import Table

    from harness.arms import Arm
    from harness.runner.plan import dry_run, estimate_input_tokens
    from harness.translate.tokens import CACHE_MIN_TOKENS

    console = Console(highlight=False)
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console = Console(highlight=False, width=120)
    rows: dict[tuple[str, str, int], tuple[PlannedRequest, int]] = {}
    per_arm: Counter[str] = Counter()
    warm_arm: Counter[str] = Counter()
    conversations: Counter[str] = Counter()
    for planned in dry_run(plan):
        conv = planned.conversation
        if conv.warmup:
            warm_arm[conv.arm] += 1
            continue
        per_arm[conv.arm] += 1
        if planned.turn == 1:
            conversations[conv.arm] += 1
        key = (conv.prompt_id, conv.arm, planned.turn)
        first, count = rows.get(key, (planned, 0))
        rows[key] = (first, count + 1)

    total = sum(per_arm.values()) + sum(warm_arm.values())
    models = sorted({scenario.model_for(p) for p in scenario.prompts})
    console.print(f"[bold]Plan for {scenario.name}[/bold] — dry run, nothing is sent")
    console.print(
        f"model {', '.join(models)} · arms {', '.join(plan.arms)} · "
        f"repeats {plan.repeats} · warm-up {plan.warmup} · cache isolation "
        f"{plan.cache_isolation} · cold {plan.cold} · seed {plan.seed}"
    )

    table = Table(title="Requests per prompt, arm and turn")
    for name in (
        "prompt",
        "arm",
        "api",
        "turn",
        "step",
        "requests",
        "est. input tokens",
        "cacheable (≥1024)",
    ):
        table.add_column(
            name,
            justify="left" if name in ("prompt", "arm", "api", "step") else "right",
            no_wrap=name != "prompt",
        )
    prompt_order = {p.id: i for i, p in enumerate(scenario.prompts)}
    arm_order = {a: i for i, a in enumerate(plan.arms)}
    for key in sorted(rows, key=lambda k: (prompt_order[k[0]], arm_order[k[1]], k[2])):
        first, count = rows[key]
        tokens = estimate_input_tokens(first.request)
        fixed = bool(first.conversation.steps[first.turn - 1].messages)
        step = (
            ("fixed " if fixed else "")
            + ("user" if first.kind == "user" else "tool results")
            + ("" if fixed or first.kind == "user" else "*")
        )
        table.add_row(
            key[0],
            key[1],
            first.conversation.api,
            str(first.turn),
            step,
            str(count),
            f"{tokens:,}",
            "yes" if tokens >= CACHE_MIN_TOKENS else "no",
        )
    console.print(table)

    arms = Table(title="Requests per arm")
    for name in ("arm", "api", "conversations", "requests", "warm-up requests"):
        arms.add_column(name, justify="left" if name in ("arm", "api") else "right")
    for arm in plan.arms:
        arms.add_row(
            arm, Arm.parse(arm).api, str(conversations[arm]), str(per_arm[arm]), str(warm_arm[arm])
        )
    console.print(arms)
    console.print(
        f"{total:,} requests in total (at most: * tool-result steps are sent only "
        "when the reply calls a tool). Input tokens are offline estimates without "
        "earlier replies; OpenAI caches prompts of 1,024+ tokens."
    )
