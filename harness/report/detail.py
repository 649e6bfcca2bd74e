"""Per-prompt detail: which prompts diverge most or are slowest, and their replies side by side.

Pairs are the same (prompt, repeat, turn) in two arms, as in the analysis. A pair's score is
the similarity the summary uses for its kind: tool-call agreement when either reply called a
tool, JSON field agreement when JSON output was asked for, else word similarity. Large runs
stay bounded: full detail for at most ``divergent + slowest`` prompts, a summary row for at most
``max_rows`` more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.analysis.metrics import ObservationTable
from harness.analysis.pairs import json_asked
from harness.analysis.similarity import compare_json, compare_tool_calls, text_similarity
from harness.report.data import PromptInfo, RowKey
from harness.report.diff import WordDiff, pretty_json, tool_calls_text, word_diff

#: Characters of one reply shown in full detail (the rest is counted, not shown).
MAX_REPLY_CHARS = 4000

PairKey = tuple[str, int, int]  # prompt_id, repeat, turn


@dataclass(frozen=True)
class Side:
    """One arm's reply to one turn."""

    arm: str
    ok: bool
    text: str
    hidden_chars: int
    tool_calls: str
    finish: str | None
    error_type: str | None
    ttft_ms: float | None
    total_ms: float | None
    input_tokens: int
    cached_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class DiffView:
    label: str
    diff: WordDiff


@dataclass(frozen=True)
class TurnDetail:
    turn: int
    prompt: tuple[str, str] | None
    left: Side
    right: Side
    score: float | None
    score_kind: str
    diffs: list[DiffView]


@dataclass(frozen=True)
class Block:
    """One comparison (right = a, left = b) of one repeat of a prompt."""

    key: str
    a: str
    b: str
    repeat: int
    turns: list[TurnDetail]


@dataclass
class PromptRow:
    prompt_id: str
    pairs: int
    failed_pairs: int
    mean_score: float | None
    min_score: float | None
    a_ttft_p50: float | None
    b_ttft_p50: float | None
    a_total_p50: float | None
    b_total_p50: float | None
    reasons: list[str] = field(default_factory=list)

    @property
    def slowest_p50(self) -> float:
        vals = [v for v in (self.a_total_p50, self.b_total_p50) if v is not None]
        return max(vals) if vals else -1.0


@dataclass
class PromptDetail:
    row: PromptRow
    info: PromptInfo | None
    blocks: list[Block]


@dataclass
class ScenarioDetail:
    scenario: str
    key: str | None
    a: str | None
    b: str | None
    details: list[PromptDetail]
    rows: list[PromptRow]
    hidden_rows: int
    prompts: int


def _f(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def pair_score(t: ObservationTable, i: int, j: int) -> tuple[float | None, str]:
    """Similarity of rows i and j and its kind; None when either failed.

    The lowest of the kinds that apply: tool-call agreement when either called a tool, JSON
    field agreement when JSON output was asked for, else word similarity of the texts.
    """
    if not (t.ok[i] and t.ok[j]):
        return None, "failed"
    found: list[tuple[float, str]] = []
    ti, tj = t.tool_calls[i], t.tool_calls[j]
    if ti or tj:
        tp = compare_tool_calls(list(ti), list(tj))
        found.append((tp.arguments_agreement if tp else 1.0, "tool-call"))
    ai, aj = t.output_text[i] or "", t.output_text[j] or ""
    if ai == aj:
        found.append((1.0, "text"))
    elif json_asked(t, i, j):
        jp = compare_json(ai, aj)
        found.append(
            (jp.agreement, "JSON field") if jp is not None else (text_similarity(ai, aj), "word")
        )
    else:
        found.append((text_similarity(ai, aj), "word"))
    return min(found, key=lambda f: (f[0], f[1] != "tool-call"))


def _index(t: ObservationTable, rows: np.ndarray, arm: str) -> dict[PairKey, int]:
    out: dict[PairKey, int] = {}
    arms, prompts = t.arm, t.prompt_id
    rep, turn = t.repeat, t.turn
    for i in rows.tolist():
        if arms[i] == arm:
            out[(prompts[i], int(rep[i]), int(turn[i]))] = i
    return out


def _median(values: list[float]) -> float | None:
    vals = [v for v in values if v == v]  # drop NaN
    return float(np.median(vals)) if vals else None


NOT_SENT_LABEL = "not sent: the reply before called no tool"


def _row_key(t: ObservationTable, i: int) -> RowKey:
    return (
        t.scenario[i],
        t.prompt_id[i],
        t.arm[i],
        int(t.repeat[i]),
        int(t.turn[i]),
        bool(t.warmup[i]),
    )


def _side(t: ObservationTable, i: int | None, arm: str, not_sent: set[RowKey]) -> Side:
    if i is None:
        return Side(arm, False, "", 0, "", None, "missing", None, None, 0, 0, 0)
    if _row_key(t, i) in not_sent:
        return Side(arm, False, "", 0, "", None, NOT_SENT_LABEL, None, None, 0, 0, 0)
    text = t.output_text[i] or ""
    return Side(
        arm=arm,
        ok=bool(t.ok[i]),
        text=text[:MAX_REPLY_CHARS],
        hidden_chars=max(0, len(text) - MAX_REPLY_CHARS),
        tool_calls=tool_calls_text(list(t.tool_calls[i])),
        finish=t.finish[i],
        error_type=t.error_type[i],
        ttft_ms=_f(t.ttft_ms[i]),
        total_ms=_f(t.total_ms[i]),
        input_tokens=int(t.input_tokens[i]),
        cached_tokens=int(t.cached_tokens[i]),
        output_tokens=int(t.output_tokens[i]),
    )


def _turn(
    t: ObservationTable,
    i: int | None,
    j: int | None,
    a: str,
    b: str,
    turn: int,
    info: PromptInfo | None,
    not_sent: set[RowKey],
) -> TurnDetail:
    left, right = _side(t, j, b, not_sent), _side(t, i, a, not_sent)
    if NOT_SENT_LABEL in (left.error_type, right.error_type):
        score, kind = None, "not sent"
    elif i is not None and j is not None:
        score, kind = pair_score(t, i, j)
    else:
        score, kind = None, "failed"
    diffs = []
    if left.ok and right.ok:
        if left.tool_calls or right.tool_calls:
            diffs.append(DiffView("tool calls", word_diff(left.tool_calls, right.tool_calls)))
        jl, jr = pretty_json(left.text), pretty_json(right.text)
        if jl is not None and jr is not None:
            diffs.append(DiffView("JSON (keys sorted)", word_diff(jl, jr)))
        elif left.text or right.text:
            diffs.append(DiffView("answer", word_diff(left.text, right.text)))
    prompt = info.steps[turn - 1] if info and 0 < turn <= len(info.steps) else None
    return TurnDetail(turn, prompt, left, right, score, kind, diffs)


def _block(
    t: ObservationTable,
    index: dict[str, dict[PairKey, int]],
    key: str,
    a: str,
    b: str,
    prompt: str,
    repeat: int,
    info: PromptInfo | None,
    not_sent: set[RowKey],
    turns: list[int],
) -> Block:
    ia, ib = index[a], index[b]
    return Block(
        key,
        a,
        b,
        repeat,
        [
            _turn(
                t, ia.get((prompt, repeat, k)), ib.get((prompt, repeat, k)), a, b, k, info, not_sent
            )
            for k in turns
        ],
    )


def scenario_detail(
    t: ObservationTable,
    rows: np.ndarray,
    scenario: str,
    comparisons: Sequence[tuple[str, str, str]],
    prompts: dict[tuple[str, str], PromptInfo],
    not_sent: set[RowKey] | None = None,
    *,
    divergent: int = 10,
    slowest: int = 5,
    max_rows: int = 300,
) -> ScenarioDetail:
    """Rank the prompts of one scenario on its first headline comparison and pick the detail.

    ``rows`` are the scenario's measured rows of ``t``; ``comparisons`` are (key, a, b).
    """
    if not comparisons:
        return ScenarioDetail(scenario, None, None, None, [], [], 0, 0)
    not_sent = not_sent or set()
    key, a, b = comparisons[0]
    index = {arm: _index(t, rows, arm) for arm in {x for _, *pair in comparisons for x in pair}}
    ia, ib = index[a], index[b]
    scores: dict[str, list[float]] = defaultdict(list)
    by_repeat: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 2.0])
    failed: dict[str, int] = defaultdict(int)
    lat: dict[tuple[str, str], list[float]] = defaultdict(list)
    for pk in sorted(ia.keys() | ib.keys()):
        i, j = ia.get(pk), ib.get(pk)
        prompt, repeat, _ = pk
        for arm, x in ((a, i), (b, j)):
            if x is not None and t.ok[x]:
                lat[(prompt, f"{arm}.ttft")].append(float(t.ttft_ms[x]))
                lat[(prompt, f"{arm}.total")].append(float(t.total_ms[x]))
        if (
            not_sent
            and i is not None
            and j is not None
            and (_row_key(t, i) in not_sent or _row_key(t, j) in not_sent)
        ):
            continue  # a tool-result follow-up one arm did not need: not a pair, not a failure
        score = pair_score(t, i, j)[0] if i is not None and j is not None else None
        stat = by_repeat[(prompt, repeat)]
        if score is None:
            failed[prompt] += 1
            scores.setdefault(prompt, [])
            stat[0] += 1
            continue
        scores[prompt].append(score)
        stat[1] = min(stat[1], score)
    table: list[PromptRow] = []
    for prompt, vals in scores.items():
        table.append(
            PromptRow(
                prompt_id=prompt,
                pairs=len(vals) + failed[prompt],
                failed_pairs=failed[prompt],
                mean_score=float(np.mean(vals)) if vals else None,
                min_score=min(vals) if vals else None,
                a_ttft_p50=_median(lat[(prompt, f"{a}.ttft")]),
                b_ttft_p50=_median(lat[(prompt, f"{b}.ttft")]),
                a_total_p50=_median(lat[(prompt, f"{a}.total")]),
                b_total_p50=_median(lat[(prompt, f"{b}.total")]),
            )
        )
    by_divergence = sorted(
        table,
        key=lambda row: (
            row.min_score if row.min_score is not None else 2.0,
            row.mean_score or 2.0,
            row.prompt_id,
        ),
    )
    by_latency = sorted(table, key=lambda row: (-row.slowest_p50, row.prompt_id))
    chosen: dict[str, PromptRow] = {}
    for row in by_divergence[:divergent]:
        if row.min_score is not None and row.min_score < 1.0:
            row.reasons.append("most divergent")
        chosen[row.prompt_id] = row
    # "slowest" only for the slower half: of two prompts, one is the slowest, not both
    for rank, row in enumerate(by_latency[:slowest]):
        if rank < len(table) // 2:
            row.reasons.append("slowest")
        chosen.setdefault(row.prompt_id, row)
    # Show each prompt's repeat with the fewest failed pairs, then the least similar one.
    example: dict[str, tuple[float, float, int]] = {}
    for (prompt, repeat), (fails, low) in by_repeat.items():
        cand = (fails, low, repeat)
        if prompt not in example or cand < example[prompt]:
            example[prompt] = cand
    turns: dict[tuple[str, int], set[int]] = defaultdict(set)
    for arm_index in index.values():
        for p, rep, turn in arm_index:
            if p in chosen:
                turns[(p, rep)].add(turn)
    details = []
    for prompt, row in chosen.items():
        repeat = example[prompt][2]
        info = prompts.get((scenario, prompt))
        details.append(
            PromptDetail(
                row,
                info,
                [
                    _block(
                        t,
                        index,
                        k,
                        x,
                        y,
                        prompt,
                        repeat,
                        info,
                        not_sent,
                        sorted(turns[(prompt, repeat)]),
                    )
                    for k, x, y in comparisons
                ],
            )
        )
    rest = [row for row in by_divergence if row.prompt_id not in chosen]
    return ScenarioDetail(
        scenario, key, a, b, details, rest[:max_rows], max(0, len(rest) - max_rows), len(table)
    )
