"""The arm id type: ``chat``, the Responses state modes, named variants and A/A replicates.

An arm id names one way of sending a scenario's prompts (DESIGN §1). The base says how a
multi-turn conversation keeps its state: ``chat`` and ``responses`` resend the whole history,
``responses_chained`` sends only the new turn with ``previous_response_id``, and
``responses_conversation`` sends only the new turn with ``conversation`` (the Conversations API).
A named variant ``<base>+<variant>`` changes one setting of its base (:data:`VARIANTS`):
``responses+no_reasoning`` does not carry the encrypted reasoning items back, ``responses+store``
and ``responses_conversation+store`` store each response. A replicate ``<arm>#<n>`` (n ≥ 2) sends
exactly what its arm sends, so the two measure the noise floor. The syntax is parsed here and
nowhere else: the scenario validator, the planner, the analysis and the reports all ask
:class:`Arm` for the base, the variant, the API, the label and the order.

Standard library only, so every layer can import it without pulling in pydantic or the SDK.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ARM_RE",
    "BASE_ARMS",
    "STATE_ARMS",
    "VARIANTS",
    "Api",
    "Arm",
    "ArmIdError",
    "StateMode",
]

Api = Literal["chat", "responses"]
#: How an arm carries a conversation: the whole history each turn, a ``previous_response_id``
#: chain, or a Conversations API conversation.
StateMode = Literal["history", "chained", "conversation"]

#: Base arm ids, in the order reports list them; an A/A replicate appends ``#2``, ``#3``….
BASE_ARMS = ("chat", "responses", "responses_chained", "responses_conversation")
#: Named variants (``<base>+<variant>``) and the bases each applies to, in report order.
VARIANTS: dict[str, tuple[str, ...]] = {
    "no_reasoning": ("responses",),
    "store": ("responses", "responses_conversation"),
}
#: Chat and every Responses way of keeping state, one arm each (``scenarios/agent_tool_loop.yaml``
#: runs them all).
STATE_ARMS = (
    "chat",
    "responses",
    "responses+no_reasoning",
    "responses+store",
    "responses_chained",
    "responses_conversation",
    "responses_conversation+store",
)
#: A valid arm id: a base arm, optionally ``+variant``, optionally ``#n`` (n ≥ 2, no leading 0).
ARM_RE = re.compile(
    r"^(chat|responses|responses_chained|responses_conversation)"
    r"(?:\+([a-z_]+))?(?:#([2-9]|[1-9][0-9]+))?$"
)

#: The names reports print (HTML, Markdown, JUnit); unknown bases print as they are.
_LABELS = {
    "chat": "Chat Completions",
    "responses": "Responses",
    "responses_chained": "Responses (chained)",
    "responses_conversation": "Responses (conversation)",
}
_VARIANT_LABELS = {"no_reasoning": "no reasoning items", "store": "store"}
_STATE: dict[str, StateMode] = {
    "responses_chained": "chained",
    "responses_conversation": "conversation",
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
    variant: str | None = None

    @classmethod
    def parse(cls, text: str, *, shown: str | None = None) -> Arm:
        """The arm of a valid id; raises :class:`ArmIdError` otherwise.

        ``shown`` is how the caller's messages render ``text`` (e.g. clipped to one line); it
        defaults to the text itself.
        """
        shown = text if shown is None else shown
        match = ARM_RE.match(text)
        if match:
            base, variant = match[1], match[2]
            if variant is not None and base not in VARIANTS.get(variant, ()):
                known = [v for v, bases in VARIANTS.items() if base in bases]
                raise ArmIdError(
                    text,
                    f"arm {shown}: {base} has no variant {variant}",
                    f"use {' or '.join(f'{base}+{v}' for v in known)}"
                    if known
                    else f"write {base} (it has no variants)",
                )
            return cls(base, int(match[3] or 1), variant)
        base, _, replica = text.partition("#")
        if ARM_RE.match(base) and replica == "1":
            raise ArmIdError(
                text,
                f"arm {shown}: replicates start at #2 ({base} itself is #1)",
                f"write {base} or {base}#2",
            )
        known = [*BASE_ARMS, *(f"{b}+{v}" for v, bases in VARIANTS.items() for b in bases)]
        close = difflib.get_close_matches(base, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ArmIdError(
            text,
            f"unknown arm {shown}",
            f"{hint}use {', '.join(BASE_ARMS)}, a variant such as responses+no_reasoning, "
            "or an A/A replicate such as chat#2",
        )

    @classmethod
    def of(cls, text: str) -> Arm:
        """The arm of an id read back from a file (observations, a summary): never fails.

        Reports must still render a run whose ids this version would reject, so an id that is
        not ``<name>#<n>`` (n ≥ 2) is taken whole as its own base.
        """
        primary, _, replica = text.partition("#")
        number = 1
        if primary and replica.isascii() and replica.isdigit() and not replica.startswith("0"):
            number = int(replica) if int(replica) >= 2 else 1
        if number == 1:
            primary = text
        base, plus, variant = primary.partition("+")
        if plus and base and variant:
            return cls(base, number, variant)
        return cls(primary, number)

    def __str__(self) -> str:
        return self.primary if self.replicate == 1 else f"{self.primary}#{self.replicate}"

    @property
    def primary(self) -> str:
        """The id without the replicate number: what a replicate is compared with."""
        return self.base if self.variant is None else f"{self.base}+{self.variant}"

    @property
    def is_replicate(self) -> bool:
        return self.replicate > 1

    @property
    def api(self) -> Api:
        """``chat``, ``chat#2`` → chat; every other arm → responses."""
        return "chat" if self.base == "chat" else "responses"

    @property
    def state(self) -> StateMode:
        """How this arm carries a conversation's earlier turns."""
        return _STATE.get(self.base, "history")

    @property
    def chained(self) -> bool:
        """Sends ``previous_response_id`` instead of the history (needs ``store: true``)."""
        return self.state == "chained"

    @property
    def conversation(self) -> bool:
        """Sends ``conversation`` (the Conversations API) instead of the history."""
        return self.state == "conversation"

    @property
    def store(self) -> bool | None:
        """The ``store`` this arm sends regardless of the scenario (None: the scenario's, else
        the harness default — false except on the chained arm)."""
        return True if self.chained or self.variant == "store" else None

    @property
    def carries_reasoning(self) -> bool:
        """Whether earlier turns' reasoning items go back to the server (encrypted with
        ``store: false``); ``+no_reasoning`` drops them."""
        return self.variant != "no_reasoning"

    @property
    def label(self) -> str:
        """The plain name reports print: ``responses_chained#2`` → "Responses (chained)
        replicate 2", ``responses+store`` → "Responses (store)"."""
        name = _LABELS.get(self.base, self.base)
        if self.variant is not None:
            extra = _VARIANT_LABELS.get(self.variant, self.variant)
            name = f"{name[:-1]}, {extra})" if name.endswith(")") else f"{name} ({extra})"
        return f"{name} replicate {self.replicate}" if self.is_replicate else name

    @property
    def sort_key(self) -> tuple[int, str, int, str, int]:
        """Reports list arms as chat, responses, responses_chained, responses_conversation
        (each followed by its variants, then replicates in number order), then any other id by
        name."""
        rank = BASE_ARMS.index(self.base) if self.base in BASE_ARMS else len(BASE_ARMS)
        variants = list(VARIANTS)
        v_rank = (
            0
            if self.variant is None
            else 1 + variants.index(self.variant)
            if self.variant in VARIANTS
            else 1 + len(variants)
        )
        return (rank, self.base, v_rank, self.variant or "", self.replicate)
