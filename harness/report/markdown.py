"""``summary.md``: the verdict, arms, comparisons and claims in GitHub-flavoured Markdown,
short enough for a PR comment or ``$GITHUB_STEP_SUMMARY``. No model output is included."""

from __future__ import annotations

import re

from harness import NOT_OPENAI_LABEL
from harness.fmt import DASH, arm_name, claim, effect, interval, ms, num, pct, usd
from harness.fmt import when as fmt_when
from harness.records import RunMeta
from harness.report.verdict import (
    MATCHED_NOTE,
    findings,
    headline_comparisons,
    sentence,
    traffic_mix,
)
from harness.summary import ConversationStateSummary, LatencyStats, Summary

_MARK = {
    "better": "✅ better",
    "worse": "❌ worse",
    "same": "➖ no real difference",
    "unclear": "❔ too close to call",
    "unknown": "· n/a",
}
_CLAIM = {
    "supported": "✅ supported",
    "contradicted": "❌ contradicted",
    "inconclusive": "❔ inconclusive",
}


#: A ``<`` that could open an HTML tag, comment or autolink; a lone ``<`` (``< 1 (cheaper)``) is
#: plain text in GitHub Markdown and stays readable in the raw file (it was ``&lt; 1``).
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


def cell(text: object) -> str:
    """Text safe inside a table cell: no pipes, no HTML, one line."""
    s = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return _TAG_OPEN.sub("&lt;", s)


def _verdict(kind: str, headline: str) -> str:
    """The mark and the headline, without saying "too close to call" twice."""
    mark = _MARK[kind]
    label = mark.split(" ", 1)[1]
    if headline.lower().startswith(label):
        rest = headline[len(label) :].lstrip(": ")
        return f"{mark}: {rest}" if rest else mark
    return f"{mark}: {headline}"


def _row(*cells: object) -> str:
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def _lat(stats: LatencyStats | None) -> str:
    if stats is None:
        return DASH
    ci = f" ({interval(stats.ci95, 'ms')})" if stats.ci95 else ""
    return f"{ms(stats.p50)}{ci}"


def _state_markdown(state: ConversationStateSummary) -> list[str]:
    """Cached share by turn per arm, items sent/held on the last turn, the claim per mode."""
    turns = sorted({t.turn for a in state.arms.values() for t in a.turns})
    out = [
        "",
        "Conversation state — cached share of the input by turn, and "
        '"cache utilization 40–80 % better" per state mode (vs chat):',
        "",
        _row("arm", "state", *(f"turn {t}" for t in turns), "items sent / held", "claim"),
        "|---|---|" + "--:|" * len(turns) + "--:|---|",
    ]
    for arm, a in state.arms.items():
        by_turn = {t.turn: t for t in a.turns}
        shares = [pct(by_turn[t].cached_share) if t in by_turn else DASH for t in turns]
        last = a.turns[-1] if a.turns else None
        items = f"{num(last.items_sent_mean, 1)} / {num(last.items_held_mean, 1)}" if last else DASH
        verdict = (
            f"{claim(a.cache_claim)} {_CLAIM[a.cache_claim.verdict]}" if a.cache_claim else DASH
        )
        out.append(_row(f"`{arm}`", a.state, *shares, items, verdict))
    return out


def summary_markdown(
    summary: Summary, *, meta: RunMeta | None = None, report_name: str = "report.html"
) -> str:
    """The Markdown summary of a run."""
    out = [f"## Shadow Harness: Chat Completions → Responses — `{cell(summary.run_id)}`", ""]
    if summary.is_emulator:
        out += [
            "> [!WARNING]",
            f"> **Target: {NOT_OPENAI_LABEL}** (profile "
            f"`{cell(summary.emulator_profile or 'unnamed')}`). The numbers are synthetic: "
            "they test the harness and the scenarios, not OpenAI.",
            "",
        ]
    else:
        out += [f"Target: **{cell(summary.target_label)}**", ""]
    if summary.replay_label is not None:
        # a replay measures nothing new: its figures are the recording's, wherever that was made
        out += [
            "> [!NOTE]",
            f"> This run is a **{cell(summary.replay_label)}**: its figures are the "
            "recording's, replayed offline, not a new measurement.",
            "",
        ]
    when = f" · {fmt_when(meta.created_at)}" if meta is not None else ""
    out += [
        f"{summary.observations:,} observations · {len(summary.scenarios)} "
        f"scenario(s){when} · 95 % bootstrap intervals ({summary.bootstrap.resamples:,} "
        "resamples)",
        "",
    ]
    if meta is not None and meta.translation_notes:
        out += ["### Migration findings", ""]
        out += [f"- `{cell(note)}`" for note in meta.translation_notes]
        out.append("")
    for s in summary.scenarios:
        out += [f"### {cell(s.name)}", ""]
        for _, c in headline_comparisons(s):
            found = findings(c, s.arms)
            out += [
                f"**{cell(sentence(c, found))}**",
                "",
                _row("", "verdict", "detail"),
                "|---|---|---|",
            ]
            out += [_row(f.topic, _verdict(f.kind, f.headline), f.detail) for f in found]
            out.append("")
        out += [
            _row(
                "arm",
                "requests",
                "errors",
                "TTFT p50 ms (95 % CI)",
                "first output p50",
                "cold TTFT p50",
                "total p50",
                "cache hit",
                "cost / 1k req",
                "per 1M req",
            ),
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for arm, a in s.arms.items():
            out.append(
                _row(
                    f"`{arm}`",
                    a.requests,
                    a.errors,
                    _lat(a.ttft_ms),
                    _lat(a.first_output_ms),
                    _lat(a.cold_ttft_ms),
                    _lat(a.total_ms),
                    pct(a.cache_hit_ratio.value, 1) if a.cache_hit_ratio else DASH,
                    usd(a.cost_usd.per_1k_requests_usd) if a.cost_usd else DASH,
                    usd(a.cost_usd.per_1m_requests_usd) if a.cost_usd else DASH,
                )
            )
        mix = traffic_mix(s)
        if mix is not None:
            out += ["", cell(mix)]
        background = {arm: a.background for arm, a in s.arms.items() if a.background}
        if background:
            out += [
                "",
                _row("background", "requests", "to queued", "queue wait", "polls", "resumed"),
                "|---|--:|--:|--:|--:|--:|",
            ]
            out += [
                _row(
                    f"`{arm}`",
                    b.requests,
                    _lat(b.time_to_queued_ms),
                    _lat(b.queue_wait_ms),
                    num(b.polls_mean) if b.polls_mean is not None else DASH,
                    f"{b.resumed_requests}/{b.streamed_requests}",
                )
                for arm, b in background.items()
            ]
        refused = {arm: a.refusals for arm, a in s.arms.items() if a.refusals}
        if refused:
            out += [
                "",
                "Refusals (measured replies, not errors): "
                + ", ".join(f"`{cell(arm)}` {n:,}" for arm, n in refused.items()),
            ]
        out += [
            "",
            _row(
                "comparison (a/b)",
                "TTFT p50",
                "first output p50",
                "cold TTFT",
                "total p50",
                "cost",
                "cache hit Δ",
                "text similarity (A/A floor)",
            ),
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for c in s.comparisons.values():
            text = c.similarity.text
            sim = DASH
            if text is not None and text.mean is not None:
                sim = num(text.mean) + (
                    f" ({num(text.noise_floor)})" if text.noise_floor is not None else ""
                )
            label = f"{arm_name(c.a)} vs {arm_name(c.b)}" + (" (A/A)" if c.replicate else "")
            out.append(
                _row(
                    label,
                    effect(c.ttft_p50_ratio),
                    effect(c.first_output_p50_ratio),
                    effect(c.cold_ttft_ratio),
                    effect(c.total_p50_ratio),
                    effect(c.cost_ratio),
                    effect(c.cache_hit_ratio_delta, "points"),
                    sim,
                )
            )
        if s.comparisons:
            out += ["", f"_{MATCHED_NOTE}_"]
        if s.claims:
            out += [
                "",
                "Migration-guide claims:",
                "",
                _row("claim", "claimed", "measured (95 % CI)", "verdict"),
                "|---|---|--:|---|",
            ]
            out += [
                _row(c.claim.replace("_", " "), c.claimed, claim(c), _CLAIM[c.verdict])
                for c in s.claims.values()
            ]
        if s.conversation_state is not None:
            out += _state_markdown(s.conversation_state)
        out.append("")
    out += [
        f"_Ratios are a/b; * = the 95 % interval excludes no change. Details, charts and "
        f"per-prompt diffs: `{cell(report_name)}`._",
        "",
    ]
    for w in summary.warnings:
        out.append(f"- ⚠ {cell(w)}")
    return "\n".join(out).rstrip("\n") + "\n"
