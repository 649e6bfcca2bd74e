"""``--sample N --stratify …`` and ``--group-by …``: which requests an import keeps, and where.

Sampling is seeded and streaming: one reservoir of at most N requests per stratum (memory grows
with N × strata, not with the source), then N is shared between the strata in proportion to
their size (largest remainders) and each stratum's share drawn from its reservoir. What is not
a request (bad lines, requests without content) passes through unsampled, in order, so a bad
line still stops the import at once.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.errors import HarnessError
from harness.importers.source import SourceItem, SourceRequest

__all__ = [
    "GROUP_BY",
    "STRATA",
    "SampleReport",
    "Sampler",
    "Stratum",
    "group_key",
    "parse_group_by",
    "parse_stratify",
]

STRATA = ("model", "tools", "stream")
GROUP_BY = ("system-prompt", "model", "metadata.KEY")


class Stratum(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stratum: str
    population: int
    kept: int


class SampleReport(BaseModel):
    """What ``--sample`` kept, per stratum (in the import report)."""

    model_config = ConfigDict(extra="forbid")

    size: int
    seed: int
    stratify: list[str]
    population: int
    kept: int
    strata: list[Stratum]

    def text(self) -> str:
        by = f", stratified by {','.join(self.stratify)}" if self.stratify else ""
        parts = "; ".join(f"{s.stratum} {s.kept}/{s.population}" for s in self.strata)
        return f"sampled {self.kept} of {self.population} requests (seed {self.seed}{by}): {parts}"


def _is_metadata_key(text: str) -> bool:
    return text.startswith("metadata.") and len(text) > len("metadata.")


def parse_stratify(text: str) -> tuple[str, ...]:
    """``model,tools,metadata.KEY`` → the names (each one of :data:`STRATA` or metadata.KEY)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if name not in STRATA and not _is_metadata_key(name):
            raise HarnessError(
                f"--stratify {name}: unknown — use some of: {', '.join(STRATA)}, metadata.KEY "
                "(KEY a key of the requests' metadata)"
            )
    if len(set(names)) < len(names):
        raise HarnessError(f"--stratify {text}: a key is named twice — name each once")
    return names


def parse_group_by(text: str) -> str:
    """``system-prompt``, ``model`` or ``metadata.KEY``."""
    if text in ("system-prompt", "model") or _is_metadata_key(text):
        return text
    raise HarnessError(
        f"--group-by {text}: unknown — use system-prompt, model or metadata.KEY "
        "(KEY a key of the requests' metadata)"
    )


def _field(body: dict[str, Any], defaults: dict[str, Any], name: str) -> Any:
    return body[name] if name in body else defaults.get(name)


def _metadata_value(body: dict[str, Any], defaults: dict[str, Any], name: str) -> str | None:
    """The request's ``metadata`` value for ``metadata.KEY`` (None when it has none)."""
    metadata = _field(body, defaults, "metadata")
    value = metadata.get(name.removeprefix("metadata.")) if isinstance(metadata, dict) else None
    return None if value is None else str(value)


def _stratum(body: dict[str, Any], defaults: dict[str, Any], by: tuple[str, ...]) -> str:
    parts = []
    for name in by:
        if name == "model":
            parts.append(f"model={_field(body, defaults, name)}")
        elif name.startswith("metadata."):
            value = _metadata_value(body, defaults, name)
            # "none" is a value too: a stratum for requests without the key, named apart
            parts.append(f"{name}={'(none)' if value is None else value}")
        else:
            parts.append(f"{name}={'yes' if _field(body, defaults, name) else 'no'}")
    return ",".join(parts) or "all"


class Sampler:
    """A seeded stratified sample of the requests of a stream of source items."""

    def __init__(
        self,
        size: int,
        stratify: tuple[str, ...],
        seed: int,
        defaults: dict[str, Any],
        clean: Callable[[str], str] = str,
    ) -> None:
        """``clean`` scrubs a stratum's name for the report (a metadata value may be an
        e-mail address); strata are told apart by their raw values."""
        if size < 1:
            raise HarnessError(f"--sample {size}: give a number of requests of 1 or more")
        self.size, self.stratify, self.seed, self.defaults = size, stratify, seed, defaults
        self.clean = clean
        self._rng = random.Random(seed)
        #: stratum → (requests seen, reservoir of (arrival index, request))
        self._strata: dict[str, tuple[int, list[tuple[int, SourceRequest]]]] = {}
        self.report: SampleReport | None = None

    def _offer(self, index: int, item: SourceRequest) -> None:
        key = _stratum(item.body, self.defaults, self.stratify)
        seen, reservoir = self._strata.get(key, (0, []))
        seen += 1
        if len(reservoir) < self.size:
            reservoir.append((index, item))
        else:
            slot = self._rng.randrange(seen)
            if slot < self.size:
                reservoir[slot] = (index, item)
        self._strata[key] = (seen, reservoir)

    def _shares(self) -> dict[str, int]:
        population = sum(seen for seen, _ in self._strata.values())
        size = min(self.size, population)
        exact = {k: size * seen / population for k, (seen, _) in self._strata.items()}
        shares = {k: int(v) for k, v in exact.items()}
        # largest remainders first; ties go to the larger stratum, then the name (deterministic)
        order = sorted(exact, key=lambda k: (shares[k] - exact[k], -self._strata[k][0], k))
        for k in order[: size - sum(shares.values())]:
            shares[k] += 1
        return shares

    def sample(self, items: Iterable[SourceItem]) -> Iterator[SourceItem]:
        """The non-request items as they come, then the sampled requests in source order."""
        for index, item in enumerate(items):
            if isinstance(item, SourceRequest):
                self._offer(index, item)
            else:
                yield item
        chosen: list[tuple[int, SourceRequest]] = []
        strata: list[Stratum] = []
        shares = self._shares() if self._strata else {}
        for key in sorted(self._strata):
            seen, reservoir = self._strata[key]
            share = min(shares[key], len(reservoir))
            picked = reservoir if share == len(reservoir) else self._rng.sample(reservoir, share)
            chosen.extend(picked)
            strata.append(Stratum(stratum=self.clean(key), population=seen, kept=share))
        self.report = SampleReport(
            size=self.size,
            seed=self.seed,
            stratify=list(self.stratify),
            population=sum(s.population for s in strata),
            kept=len(chosen),
            strata=strata,
        )
        for _, item in sorted(chosen, key=lambda pair: pair[0]):
            yield item


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:limit].strip("-.").lower()


def group_key(body: dict[str, Any], defaults: dict[str, Any], group_by: str) -> str:
    """The raw value a request is grouped by (``''`` when it has none)."""
    if group_by == "model":
        return str(_field(body, defaults, "model") or "")
    if group_by == "system-prompt":
        messages = body.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        if isinstance(first, dict) and first.get("role") in ("system", "developer"):
            content = first.get("content")
            return content if isinstance(content, str) else repr(content)
        return ""
    return _metadata_value(body, defaults, group_by) or ""


class GroupNames:
    """File-safe names for group values, unique, in order of first appearance."""

    def __init__(self, group_by: str) -> None:
        self.group_by = group_by
        self._names: dict[str, str] = {}

    def name(self, value: str, clean: Callable[[str], str] = str) -> str:
        """``value``'s name; ``clean`` scrubs the value first (a name must not carry an e-mail
        or key), and distinct values stay distinct groups even when they scrub alike."""
        known = self._names.get(value)
        if known is not None:
            return known
        shown = clean(value)
        if self.group_by == "system-prompt":
            number = len(self._names) + 1
            words = _slug(" ".join(shown.split()[:5]))
            base = f"system-{number}-{words}" if value else "no-system-prompt"
        elif not value:
            base = f"no-{_slug(self.group_by.removeprefix('metadata.')) or 'value'}"
        else:
            base = _slug(shown) or "group"
        name, n = base, 1
        taken = set(self._names.values())
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        self._names[value] = name
        return name
