"""Deterministic reply content from (seed, request).

The *content key* hashes the seed, model, last user message, tool outputs answered now, output
format, tool names and turn number — not the system prompt or earlier history, so a harness's
cache-isolation nonce (at the start of the prompt) does not change the reply, and Chat and
Responses get the same base reply for the same neutral request.

- Length: natural replies draw ``content.reply_tokens`` and stay under the token cap; a prompt
  asking for long output ("in detail", "essay", "at least 500 words"…) draws
  ``long_reply_tokens`` and is cut at the cap (``finish_reason: length`` /
  ``response.incomplete``); "briefly", "in one word"… draw ``short_reply_tokens``.
- ``temperature > 0``: a share of words (``0.12 × temperature``, at most half) is redrawn,
  one token for one token, from a stream seeded by the key, the API and how many times this
  exact request was seen — so A/A replicates differ, reproducibly. The length (a jitter of
  ±10 % × temperature) is the key's, the same for every sample on both APIs: the request
  carries nothing that pairs a Chat conversation with its Responses twin, so a sample cannot
  be the same on both, but its token count can, and later turns' input is then the same.
- ``divergence`` (profile): on Responses, exactly ``round(d × words)`` words are replaced, so
  similarity metrics can be checked against a known truth (exact at ``temperature: 0``).
- Structured outputs: JSON valid against the schema (:mod:`harness.emulator.schema_values`).
- Tools: called when ``tool_choice`` requires it, or on ``auto`` when a word of a tool's name
  (``get_weather`` → "weather") is in the last user message and no tool output is pending;
  arguments are schema-valid JSON. Pending tool outputs are answered in text that quotes them.
- Refusals (``content.refusal_share``, off by default): a share of requests, drawn from the
  content key so Chat and Responses refuse the same ones, get a fixed refusal sentence.
- Reasoning models: reasoning tokens per effort (``content.reasoning_tokens`` ±40 %), counted in
  the output tokens and the cap; encrypted reasoning content records its token count.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache

from harness.emulator.profiles import ContentProfile
from harness.emulator.prompt import GenRequest, Segment, ToolSpec, count, decode_pieces, encode
from harness.emulator.schema_values import Hints, value_for

WORDS = (
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "or",
    "from",
    "at",
    "an",
    "not",
    "have",
    "has",
    "but",
    "all",
    "can",
    "will",
    "more",
    "one",
    "about",
    "which",
    "their",
    "they",
    "we",
    "you",
    "your",
    "our",
    "its",
    "also",
    "other",
    "time",
    "new",
    "some",
    "these",
    "may",
    "like",
    "into",
    "than",
    "only",
    "any",
    "most",
    "over",
    "such",
    "through",
    "when",
    "where",
    "after",
    "first",
    "use",
    "data",
    "system",
    "service",
    "support",
    "team",
    "customer",
    "order",
    "account",
    "policy",
    "help",
    "request",
    "process",
    "information",
    "report",
    "value",
    "result",
    "change",
    "level",
    "model",
    "test",
    "quality",
    "product",
    "price",
    "cost",
    "plan",
    "review",
    "update",
    "issue",
    "answer",
    "question",
    "example",
    "response",
    "number",
    "part",
    "place",
    "case",
    "point",
    "group",
    "problem",
    "fact",
    "hand",
    "week",
    "day",
    "year",
    "people",
    "work",
    "life",
    "world",
    "state",
    "program",
    "market",
    "business",
    "company",
    "project",
    "option",
    "feature",
    "detail",
    "step",
    "list",
    "note",
    "rule",
    "guide",
    "check",
    "simple",
    "clear",
    "short",
    "direct",
    "quick",
    "good",
    "best",
    "high",
    "low",
    "early",
    "late",
    "open",
    "close",
    "full",
    "free",
    "real",
    "main",
    "key",
    "common",
    "general",
    "specific",
    "current",
    "recent",
    "final",
    "total",
    "average",
    "local",
    "global",
    "public",
    "private",
    "standard",
    "basic",
    "safe",
    "secure",
    "stable",
    "fast",
    "slow",
    "better",
    "easy",
    "hard",
    "small",
    "large",
    "long",
    "wide",
    "strong",
    "light",
    "dark",
    "warm",
    "cool",
    "fresh",
    "clean",
    "ready",
    "able",
    "possible",
    "available",
    "important",
    "useful",
    "helpful",
    "relevant",
    "similar",
    "different",
    "regular",
    "typical",
    "normal",
    "special",
    "certain",
    "exact",
    "whole",
    "entire",
    "single",
    "double",
    "every",
    "each",
    "both",
    "either",
    "neither",
    "many",
    "much",
    "few",
    "several",
    "enough",
    "another",
    "same",
    "own",
    "next",
    "last",
    "previous",
    "following",
    "above",
    "below",
    "within",
    "without",
    "between",
    "during",
    "before",
    "under",
    "along",
    "across",
    "around",
    "against",
    "upon",
    "while",
    "because",
    "although",
    "though",
    "since",
    "unless",
    "until",
    "whether",
    "however",
    "therefore",
    "instead",
    "otherwise",
    "usually",
    "often",
    "always",
    "never",
    "sometimes",
    "generally",
    "typically",
    "especially",
    "mostly",
    "simply",
    "clearly",
    "finally",
    "recently",
    "currently",
    "already",
    "still",
    "again",
    "even",
    "just",
    "then",
    "there",
    "here",
    "now",
    "today",
    "tomorrow",
    "yesterday",
    "soon",
    "later",
)
"""Words that are one ``o200k_base`` token each, with a leading space and capitalised."""

_LONG = re.compile(
    r"\b(in (great )?detail|detailed|essay|elaborate|comprehensive|"
    r"thorough(ly)?|in depth|in-depth|at length|long (answer|reply|response|text|"
    r"story|essay|explanation)|at least \d+ words|\d{3,} words|"
    r"write a (story|report|article))\b",
    re.IGNORECASE,
)
_SHORT = re.compile(
    r"\b(one word|single word|in a word|briefly|brief answer|short answer|"
    r"yes or no|one sentence|in a sentence|tl;?dr)\b",
    re.IGNORECASE,
)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_STOP = {
    "get",
    "set",
    "fetch",
    "list",
    "find",
    "search",
    "lookup",
    "look",
    "create",
    "update",
    "delete",
    "do",
    "run",
    "make",
    "call",
    "the",
    "a",
    "an",
    "for",
    "of",
    "to",
    "in",
    "on",
    "by",
    "info",
    "data",
    "current",
    "tool",
    "api",
}


@dataclass(slots=True)
class ToolCallOut:
    """A function call in the reply."""

    call_id: str
    name: str
    arguments: str
    pieces: list[str]


@dataclass(slots=True)
class Reply:
    """What the model "said": text or tool calls, token counts and how it finished."""

    text: str = ""
    pieces: list[str] = field(default_factory=list)
    tool_calls: list[ToolCallOut] = field(default_factory=list)
    reasoning_tokens: int = 0
    output_tokens: int = 0
    finish: str = "stop"
    key: int = 0
    divergence_words: float | None = None
    variation_words: float | None = None
    #: the model refused: ``text`` is the refusal (chat ``refusal``, a Responses refusal part)
    refusal: bool = False


REFUSAL_TEXT = "I'm sorry, but I can't help with that."
_REFUSAL_SALT = 0x5EF05A1


#: The harness's cache-isolation marker (``[run 1a2b3c4d] ``). Without a system prompt it starts
#: the first user message; a real model would answer the same question the same way, so the
#: emulator ignores it too (else every arm's reply would differ and similarity would be noise).
_RUN_MARKER = re.compile(r"^\[run [0-9a-f]{8}\] ")


def content_key(req: GenRequest, seed: int) -> int:
    """The hash that fixes the base reply of a request (see the module docstring)."""
    question = _RUN_MARKER.sub("", req.last_user_text(), count=1)
    parts = [str(seed), req.model.id, question, str(req.user_turns())]
    parts += [f"{s.name}:{s.text}" for s in req.pending_tool_outputs()]
    if req.output is not None:
        parts.append(json.dumps([req.output.kind, req.output.schema], sort_keys=True))
    parts += [t.name for t in req.tools]
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest)


def _rng(*parts: int) -> random.Random:
    # hash() of a tuple of ints is stable across processes (no hash randomisation for ints).
    return random.Random(hash(parts))


_CAPS = {w: w.capitalize() for w in WORDS}
_SPACED = {w: " " + w for w in WORDS}
_SPACED_CAPS = {w: " " + w.capitalize() for w in WORDS}


def _words(rng: random.Random, target: int) -> tuple[list[str], list[int]]:
    """Words and sentence lengths; words + one '.' per sentence = ``target`` tokens."""
    rand = rng.random
    lengths: list[int] = []
    left = max(1, target)
    while left > 0:
        n = 1 if left <= 2 else min(left - 1, 6 + int(rand() * 9))
        lengths.append(n)
        left -= n + 1
    return rng.choices(WORDS, k=sum(lengths)), lengths


@dataclass(frozen=True, slots=True)
class _Layout:
    """Text as one string per token — every word of :data:`WORDS` is one token, as is each
    '.' — with where each word sits, so words can be swapped without re-tokenizing."""

    words: tuple[str, ...]
    pieces: tuple[str, ...]
    piece_of: tuple[int, ...]
    starts: frozenset[int]
    sentence_ends: tuple[tuple[int, int], ...]


def _layout(words: list[str], lengths: list[int], *, spaced: bool) -> _Layout:
    pieces: list[str] = []
    piece_of: list[int] = []
    starts: set[int] = set()
    ends: list[tuple[int, int]] = []
    i = 0
    for n in lengths:
        starts.add(i)
        piece_of.append(len(pieces))
        pieces.append(_SPACED_CAPS[words[i]] if spaced or pieces else _CAPS[words[i]])
        for w in words[i + 1 : i + n]:
            piece_of.append(len(pieces))
            pieces.append(_SPACED[w])
        pieces.append(".")
        i += n
        ends.append((i, len(pieces)))
    return _Layout(tuple(words), tuple(pieces), tuple(piece_of), frozenset(starts), tuple(ends))


@lru_cache(maxsize=4096)
def _base_layout(key: int, target: int, spaced: bool) -> _Layout:
    # Repeated prompts (the usual load) reuse their base reply instead of redrawing it.
    return _layout(*_words(random.Random(hash((key, target))), target), spaced=spaced)


@lru_cache(maxsize=4096)
def _base_draws(key: int) -> tuple[float, float]:
    rng = random.Random(key)
    return rng.random(), rng.random()


@lru_cache(maxsize=1024)
def _intent(question: str) -> tuple[bool, bool]:
    return bool(_LONG.search(question)), bool(_SHORT.search(question))


@dataclass(frozen=True, slots=True)
class _Variation:
    """Draws shared by every sample of one base reply; sample ``n`` reads them from offset
    ``n`` — a different, reproducible variation each time, without seeding a generator per
    request (which would cost more than building the reply)."""

    order: tuple[int, ...]
    words: tuple[str, ...]
    #: the length's draw in [-1, 1]: one for every sample, on both APIs
    jitter: float
    extension: _Layout


@lru_cache(maxsize=4096)
def _variation(key: int, n_words: int, n_pieces: int) -> _Variation:
    rng = random.Random(hash((key, n_words, 104729)))
    # enough extra sentences for the longest jitter (+20 %), so a longer sample just adds some
    extension = _layout(*_words(rng, n_pieces // 5 + 16), spaced=True)
    return _Variation(
        tuple(rng.sample(range(n_words), n_words)),
        tuple(rng.choices(WORDS, k=97)),
        rng.uniform(-1.0, 1.0),
        extension,
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    """One length jitter of a base text: its layout and how many words a sample swaps."""

    layout: _Layout
    swaps: int


@lru_cache(maxsize=1024)
def _shape(key: int, target: int, spaced: bool, temperature: float) -> _Shape:
    """The base text resized by the variation's length draw (±10 % × temperature)."""
    base = _base_layout(key, target, spaced)
    draws = _variation(key, len(base.words), len(base.pieces))
    new_target = round(target * (1 + 0.1 * draws.jitter * min(temperature, 2.0)))
    layout = _resized(base, draws.extension, new_target)
    n_words = len(layout.words)
    return _Shape(layout, min(n_words, round(min(0.5, 0.12 * temperature) * n_words)))


def _resized(base: _Layout, extension: _Layout, new_target: int) -> _Layout:
    """``base`` cut to its sentences within ``new_target`` tokens (at least one), or extended
    by whole sentences of ``extension`` up to it."""
    n_words, n_pieces = len(base.words), len(base.pieces)
    if new_target < n_pieces:
        ends = tuple((w, p) for w, p in base.sentence_ends if p <= new_target) or (
            base.sentence_ends[0],
        )
        n_w, n_p = ends[-1]
        return _Layout(
            base.words[:n_w],
            base.pieces[:n_p],
            base.piece_of[:n_w],
            frozenset(i for i in base.starts if i < n_w),
            ends,
        )
    if new_target == n_pieces:
        return base
    want = new_target - n_pieces
    # whole sentences, never past the length asked for (it may sit just under a cap)
    added = tuple((w, p) for w, p in extension.sentence_ends if p <= want)
    n_w, n_p = added[-1] if added else (0, 0)
    return _Layout(
        base.words + extension.words[:n_w],
        base.pieces + extension.pieces[:n_p],
        base.piece_of + tuple(n_pieces + i for i in extension.piece_of[:n_w]),
        base.starts | {n_words + i for i in extension.starts if i < n_w},
        base.sentence_ends + tuple((n_words + w, n_pieces + p) for w, p in added),
    )


def _sample_positions(order: tuple[int, ...], sample_index: int, n_words: int, k: int) -> list[int]:
    """``k`` word positions for a sample: the shared order walked from the sample's offset,
    skipping words a shorter sample does not have."""
    n_order = len(order)
    at = sample_index * (k + 1) % n_order
    if n_words < n_order:
        return [i for i in order[at:] + order[:at] if i < n_words][:k]
    head = order[at : at + k]
    positions = [*head, *order[: min(at, k - len(head))]]
    # the words a longer sample adds come after every word of the order
    positions += range(n_order, n_order + k - len(positions))
    return positions


@dataclass(slots=True)
class _Text:
    """A text being varied: its layout, and its words and pieces as swapped so far."""

    layout: _Layout
    spaced: bool
    words: list[str]
    pieces: list[str]

    @classmethod
    def of(cls, layout: _Layout, spaced: bool) -> _Text:
        return cls(layout, spaced, list(layout.words), list(layout.pieces))

    def swap(self, positions: list[int], replacements: list[str]) -> None:
        """Put ``replacements`` at word ``positions`` (each differs from the word it replaces)."""
        words, pieces = self.words, self.pieces
        piece_of, starts = self.layout.piece_of, self.layout.starts
        for i, new in zip(positions, replacements, strict=True):
            if new == words[i]:
                new = WORDS[(WORDS.index(new) + 1) % len(WORDS)]
            words[i] = new
            first_piece = i == 0 and not self.spaced
            pieces[piece_of[i]] = (
                _CAPS[new] if first_piece else _SPACED_CAPS[new] if i in starts else _SPACED[new]
            )


def _text_pieces(
    d: Draft, sample_index: int | None, div_rng: random.Random | None
) -> tuple[list[str], float | None, float | None]:
    """Pieces of the draft's base text, varied (sample ``sample_index`` of a temperature > 0
    request) and diverged (Responses, ``div_rng``) as asked; returns the shares of words
    changed by each."""
    spaced = bool(d.lead)
    base = _base_layout(d.key, d.target, spaced)
    varied: float | None = None
    if sample_index is None:
        text = _Text.of(base, spaced)
    else:
        text, varied = _vary(d, base, sample_index, spaced)
    diverged: float | None = None
    if div_rng is not None:
        n = len(text.words)
        positions = div_rng.sample(range(n), min(n, round(d.divergence * n)))
        text.swap(positions, [WORDS[int(div_rng.random() * len(WORDS))] for _ in positions])
        diverged = len(positions) / n
    return text.pieces, varied, diverged


def _vary(d: Draft, base: _Layout, sample_index: int, spaced: bool) -> tuple[_Text, float]:
    """Sample ``sample_index`` of the base text: its length jittered by whole sentences, then a
    share of its words swapped; returns it and the share swapped."""
    draws = _variation(d.key, len(base.words), len(base.pieces))
    # one length for every sample of a request, on either API: the same conversation then
    # costs the same input on its later turns whichever API carries it (issue 17)
    shape = _shape(d.key, d.target, spaced, d.temperature)
    text = _Text.of(shape.layout, spaced)
    n = len(text.words)
    positions = _sample_positions(draws.order, sample_index, n, shape.swaps)
    bank = draws.words
    text.swap(positions, [bank[(sample_index * 7 + j) % len(bank)] for j in range(len(positions))])
    return text, len(positions) / n


def _tool_words(tool: ToolSpec) -> set[str]:
    parts = re.split(r"[_\-\s.]+|(?<=[a-z])(?=[A-Z])", tool.name)
    return {p.lower() for p in parts if len(p) >= 3 and p.lower() not in _STOP}


def _chosen_tools(req: GenRequest, question: str) -> list[ToolSpec]:
    if not req.tools or req.tool_choice == "none" or req.pending_tool_outputs():
        return []
    if req.forced_tool is not None:
        return [t for t in req.tools if t.name == req.forced_tool][:1]
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", question)}
    words |= {w[:-1] for w in words if w.endswith("s")}
    matched = [t for t in req.tools if _tool_words(t) & words]
    if not matched and req.tool_choice == "required":
        matched = req.tools[:1]
    return matched if req.parallel_tool_calls else matched[:1]


def _summarise(output: Segment) -> str:
    try:
        data = json.loads(output.text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data:
        facts = ", ".join(
            f"{k} {json.dumps(v) if not isinstance(v, str) else v}"
            for k, v in list(data.items())[:4]
        )
    else:
        facts = " ".join(output.text.split()[:20])
    return f"From {output.name or 'the tool'}: {facts}."


def encrypted_reasoning(tokens: int, key: int) -> str:
    """Opaque ``encrypted_content`` that tells this emulator how many tokens the item holds."""
    payload = json.dumps({"v": 1, "n": tokens, "k": f"{key:016x}"}).encode()
    return "gAAAAA" + base64.urlsafe_b64encode(payload).decode()


def reasoning_tokens_of(encrypted: str) -> int | None:
    """Token count inside :func:`encrypted_reasoning` content, or None if it is not ours."""
    if not encrypted.startswith("gAAAAA"):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(encrypted[6:].encode()))
        return int(data["n"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Draft:
    """What a request fixes about its reply; :func:`sample` makes each reply from it.

    Identical requests (the usual load) share one draft, so only the temperature variation is
    drawn per request. ``fixed`` is the reply itself when samples cannot differ (tool calls,
    structured output, ``temperature: 0``) and is then shared: replies are read-only.
    """

    key: int
    reasoning_tokens: int
    budget: int
    fixed: Reply | None = None
    lead: tuple[str, ...] = ()
    target: int = 0
    temperature: float = 0.0
    api_offset: int = 0
    divergence: float = 0.0


def draft(req: GenRequest, *, key: int, content: ContentProfile, divergence: float) -> Draft:
    """The draft of the reply to ``req`` (``key`` from :func:`content_key`)."""
    question = req.last_user_text()
    cap = req.max_output_tokens or req.model.max_output_tokens
    long_wanted, short_wanted = _intent(question)
    u_reasoning, u_length = _base_draws(key)

    reasoning = 0
    if req.model.reasoning:
        median = content.reasoning_tokens.get(req.effort or "medium", 0)
        reasoning = int(median * (0.6 + 0.8 * u_reasoning))
        if not long_wanted:
            reasoning = min(reasoning, max(0, (cap - 1) // 2))
    budget = max(0, cap - reasoning)

    if (
        content.refusal_share
        and random.Random(key ^ _REFUSAL_SALT).random() < content.refusal_share
    ):
        pieces = decode_pieces(encode(REFUSAL_TEXT))
        refused = _finished(pieces, key, reasoning, budget)
        refused.refusal = True
        return Draft(key, reasoning, budget, fixed=refused)
    calls = _chosen_tools(req, question)
    if calls:
        return Draft(
            key,
            reasoning,
            budget,
            fixed=_tool_reply(
                calls, question, key=key, reasoning=reasoning, budget=budget, cap=cap
            ),
        )
    if req.output is not None:
        rng = random.Random(key)
        hints = Hints.from_text(question)
        if req.output.kind == "json_schema":
            text = json.dumps(value_for(req.output.schema, rng, hints))
        else:
            text = json.dumps({"answer": "".join(_layout(*_words(rng, 12), spaced=False).pieces)})
        return Draft(
            key,
            reasoning,
            budget,
            fixed=_finished(decode_pieces(encode(text)), key, reasoning, budget),
        )

    if long_wanted:
        target = content.long_reply_tokens
    else:
        span = content.short_reply_tokens if short_wanted else content.reply_tokens
        target = span.min + int(u_length * (span.max - span.min + 1))
    lead = " ".join(_summarise(s) for s in req.pending_tool_outputs())
    lead_pieces = tuple(decode_pieces(encode(lead))) if lead else ()
    if not long_wanted:
        target = min(target, max(1, int((budget - len(lead_pieces)) * 0.85)))
    # Samples of the same request alternate between APIs' draws, so Chat and Responses
    # replies differ like two A/A samples do.
    varied = Draft(
        key,
        reasoning,
        budget,
        lead=lead_pieces,
        target=target,
        temperature=req.temperature,
        api_offset=int(req.api == "responses"),
        divergence=divergence if req.api == "responses" else 0.0,
    )
    if req.temperature > 0:
        return varied
    return Draft(key, reasoning, budget, fixed=_text_reply(varied, None))


def sample(d: Draft, occurrence: int) -> Reply:
    """The reply to the ``occurrence``-th identical request to this API (counted from 0)."""
    if d.fixed is not None:
        return d.fixed
    return _text_reply(d, 2 * occurrence + d.api_offset)


def _tool_reply(
    calls: list[ToolSpec], question: str, *, key: int, reasoning: int, budget: int, cap: int
) -> Reply:
    rng = random.Random(key)
    hints = Hints.from_text(question)
    reply = Reply(reasoning_tokens=reasoning, key=key, finish="tool_calls")
    used = 0
    for tool in calls:
        args = json.dumps(value_for(tool.parameters, rng, hints))
        call_id = "call_" + "".join(rng.choices(_ALNUM, k=24))
        pieces = decode_pieces(encode(args))
        used += len(pieces) + count(tool.name) + 4
        reply.tool_calls.append(ToolCallOut(call_id, tool.name, args, pieces))
    reply.output_tokens = reasoning + used
    if used > budget:
        reply.finish = "length"
        reply.output_tokens = cap
    return reply


def _text_reply(d: Draft, sample_index: int | None) -> Reply:
    div_rng = _rng(d.key, 7919) if d.divergence > 0 else None
    body, varied, diverged = _text_pieces(d, sample_index, div_rng)
    return _finished(
        [*d.lead, *body] if d.lead else body,
        d.key,
        d.reasoning_tokens,
        d.budget,
        varied=varied,
        diverged=diverged,
    )


def _finished(
    pieces: list[str],
    key: int,
    reasoning: int,
    budget: int,
    *,
    varied: float | None = None,
    diverged: float | None = None,
) -> Reply:
    """The reply of these output pieces, cut at the token budget."""
    finish = "stop"
    if len(pieces) > budget:
        pieces = pieces[:budget]
        finish = "length"
    return Reply(
        text="".join(pieces),
        pieces=pieces,
        reasoning_tokens=reasoning,
        output_tokens=reasoning + len(pieces),
        finish=finish,
        key=key,
        divergence_words=diverged,
        variation_words=varied,
    )
