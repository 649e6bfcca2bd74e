"""The arm id type: ``chat``, ``responses``, ``responses_chained`` and A/A replicates (``chat#2``).

An arm id names one way of sending a scenario's prompts (DESIGN §1). A replicate ``<base>#<n>``
(n ≥ 2) sends exactly what its base arm sends, so the two measure the noise floor. The syntax is
parsed here and nowhere else: the scenario validator, the planner, the analysis and the reports
all ask :class:`Arm` for the base, the API, the label and the order.

Standard library only, so every layer can import it without pulling in pydantic or the SDK.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["ARM_RE", "BASE_ARMS", "Api", "Arm", "ArmIdError"]

Api = Literal["chat", "responses"]

#: Base arm ids, in the order reports list them; an A/A replicate appends ``#2``, ``#3``….
BASE_ARMS = ("chat", "responses", "responses_chained")
#: A valid arm id: a base arm, optionally ``#n`` with n ≥ 2 and no leading zero.
ARM_RE = re.compile(r"^(chat|responses|responses_chained)(?:#([2-9]|[1-9][0-9]+))?$")

#: The names reports print (HTML, Markdown, JUnit); unknown bases print as they are.
_LABELS = {
    "chat": "Chat Completions",
    "responses": "Responses",
    "responses_chained": "Responses (chained)",
}


class ArmIdError(ValueError):
    """A bad arm id, as one ``message`` and the ``fix`` to write instead."""

    def __init__(self, text: str, message: str, fix: str) -> None:
        super().__init__(f"{message} — {fix}")
        self.text = text
        self.message = message
        self.fix = fix


@dataclass(frozen=True)
class Arm:
    """One arm id. ``str(arm)`` gives the id back; ``replicate`` is 1 for the primary arm."""

    base: str
    replicate: int = 1

    @classmethod
    def parse(cls, text: str, *, shown: str | None = None) -> Arm:
        """The arm of a valid id; raises :class:`ArmIdError` otherwise.

        ``shown`` is how the caller's messages render ``text`` (e.g. clipped to one line); it
        defaults to the text itself.
        """
        match = ARM_RE.match(text)
        if match:
            return cls(match[1], int(match[2] or 1))
        shown = text if shown is None else shown
        base, _, replica = text.partition("#")
        if base in BASE_ARMS and replica == "1":
            raise ArmIdError(
                text,
                f"arm {shown}: replicates start at #2 ({base} itself is #1)",
                f"write {base} or {base}#2",
            )
        close = difflib.get_close_matches(base, BASE_ARMS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ArmIdError(
            text,
            f"unknown arm {shown}",
            f"{hint}use chat, responses, responses_chained, or an A/A replicate such as chat#2",
        )

    @classmethod
    def of(cls, text: str) -> Arm:
        """The arm of an id read back from a file (observations, a summary): never fails.

        Reports must still render a run whose ids this version would reject, so an id that is
        not ``<name>#<n>`` (n ≥ 2) is taken whole as its own base.
        """
        base, _, replica = text.partition("#")
        if base and replica.isascii() and replica.isdigit() and not replica.startswith("0"):
            number = int(replica)
            if number >= 2:
                return cls(base, number)
        return cls(text)

    def __str__(self) -> str:
        return self.base if self.replicate == 1 else f"{self.base}#{self.replicate}"

    @property
    def is_replicate(self) -> bool:
        return self.replicate > 1

    @property
    def api(self) -> Api:
        """``chat``, ``chat#2`` → chat; every other arm → responses."""
        return "chat" if self.base == "chat" else "responses"

    @property
    def chained(self) -> bool:
        """Sends ``previous_response_id`` instead of the history (needs ``store: true``)."""
        return self.base == "responses_chained"

    @property
    def label(self) -> str:
        """The plain name reports print: ``responses_chained#2`` → "Responses (chained)
        replicate 2"."""
        name = _LABELS.get(self.base, self.base)
        return f"{name} replicate {self.replicate}" if self.is_replicate else name

    @property
    def sort_key(self) -> tuple[int, str, int]:
        """Reports list arms as chat, responses, responses_chained (each followed by its
        replicates in number order), then any other id by name."""
        rank = BASE_ARMS.index(self.base) if self.base in BASE_ARMS else len(BASE_ARMS)
        return (rank, self.base, self.replicate)
