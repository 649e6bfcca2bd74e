"""Remove secrets and personal data from imported requests before anything is written.

Every string of a request (values and mapping keys, tool arguments included) is searched for
API keys, bearer tokens, e-mail addresses, card-like numbers (13-19 digits passing the Luhn
check), phone numbers and the user's own patterns; each match becomes ``[redacted-KIND]`` and is
counted by kind. The rules err on the side of removing: a scenario is shared, a log is not.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["Scrubber"]

_API_KEY = re.compile(
    r"\b(?:sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{16,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35})"
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_DIGITS = re.compile(r"\d")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{7,18}\d(?![\w])")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_phone(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if not 9 <= len(digits) <= 15:
        return False
    if text.startswith("+"):
        return True
    # grouped digits ending in a group of 4 or more (415-555-0100, (415) 555 0100); a bare run
    # of digits is an id or an amount, and a date-time (2024-01-15 10) ends in a short group
    groups = re.findall(r"\d+", text)
    return len(groups) >= 2 and len(groups[-1]) >= 4


#: distinct strings whose result is remembered (a log repeats its system prompt on every line)
_MEMO_SIZE = 4096


class Scrubber:
    """Replaces secrets and personal data in strings, counting each kind (every occurrence)."""

    def __init__(self, extra: Sequence[str] = ()) -> None:
        self.patterns = [re.compile(p) for p in extra]
        self.counts: Counter[str] = Counter()
        self._memo: dict[str, tuple[str, Counter[str]]] = {}

    def text(self, text: str) -> str:
        """``text`` with every match replaced, counted."""
        hit = self._memo.get(text)
        if hit is None:
            hit = self._scrub(text)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()  # bounded: memory must not grow with the log
            self._memo[text] = hit
        self.counts.update(hit[1])
        return hit[0]

    def quiet(self, text: str) -> str:
        """``text`` scrubbed, neither counted nor remembered: for the source's names of things
        (ids, labels, problems), which are one-offs and not values of the requests."""
        return self._scrub(text)[0]

    def _scrub(self, text: str) -> tuple[str, Counter[str]]:
        found: Counter[str] = Counter()

        def sub(kind: str, pattern: re.Pattern[str], text: str, keep: Any = None) -> str:
            def replace(match: re.Match[str]) -> str:
                if keep is not None and not keep(match.group(0)):
                    return match.group(0)
                found[kind] += 1
                return f"[redacted-{kind}]"

            return pattern.sub(replace, text)

        # bearer first: its token may look like a key; the cheap tests skip what cannot match
        if "earer" in text or "EARER" in text:
            text = sub("bearer-token", _BEARER, text)
        text = sub("api-key", _API_KEY, text)
        if "@" in text:
            text = sub("email", _EMAIL, text)
        if _DIGITS.search(text):
            text = sub("card-number", _CARD, text, lambda s: _luhn(re.sub(r"\D", "", s)))
            text = sub("phone", _PHONE, text, _is_phone)
        for pattern in self.patterns:
            text = sub("custom", pattern, text)
        return text, found

    def value(self, value: Any) -> Any:
        """A JSON value with every string (keys included) scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value
