"""Word-level diffs of two replies, as segments a template renders (never as HTML).

A segment is ``(op, text)`` with op ``""`` (same in both), ``"del"`` (only in the old/left
reply) or ``"ins"`` (only in the new/right reply). The template escapes every text and wraps
changed ones in ``<del>``/``<ins>``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.analysis.similarity import parse_json
from harness.records import ToolCallRecord

Op = Literal["", "del", "ins"]
Segment = tuple[Op, str]

_TOKEN = re.compile(r"\S+\s*|\s+")


def tokens(text: str) -> list[str]:
    """Words with their trailing whitespace (so joining the tokens gives the text back)."""
    return _TOKEN.findall(text)


def _append(out: list[Segment], op: Op, text: str) -> None:
    if not text:
        return
    if out and out[-1][0] == op:
        out[-1] = (op, out[-1][1] + text)
    else:
        out.append((op, text))


def _mark(out: list[Segment], op: Op, text: str) -> None:
    # The space after the last changed word is not part of the change.
    word = text.rstrip()
    _append(out, op, word)
    _append(out, "", text[len(word) :])


@dataclass(frozen=True)
class WordDiff:
    """Both sides of a diff; ``left`` is the old (baseline) reply, ``right`` the new one."""

    left: list[Segment]
    right: list[Segment]

    @property
    def changed(self) -> bool:
        return any(op for op, _ in self.left) or any(op for op, _ in self.right)


def word_diff(old: str, new: str) -> WordDiff:
    """Diff two texts word by word (whitespace differences alone do not count)."""
    ta, tb = tokens(old), tokens(new)
    ka, kb = [t.strip() for t in ta], [t.strip() for t in tb]
    left: list[Segment] = []
    right: list[Segment] = []
    matcher = difflib.SequenceMatcher(None, ka, kb, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append(left, "", "".join(ta[i1:i2]))
            _append(right, "", "".join(tb[j1:j2]))
            continue
        _mark(left, "del", "".join(ta[i1:i2]))
        _mark(right, "ins", "".join(tb[j1:j2]))
    return WordDiff(left, right)


def pretty_json(text: str | None) -> str | None:
    """The reply re-indented with sorted keys, when it is a JSON object or array."""
    ok, value = parse_json(text)
    if not ok:
        return None
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def tool_calls_text(calls: Sequence[ToolCallRecord]) -> str:
    """One line per call, ``name({"arg": 1})``, arguments with sorted keys when they parse."""
    lines = []
    for c in calls:
        try:
            args = json.dumps(json.loads(c.arguments), sort_keys=True, ensure_ascii=False)
        except (json.JSONDecodeError, TypeError):
            args = c.arguments
        lines.append(f"{c.name}({args})")
    return "\n".join(lines)
