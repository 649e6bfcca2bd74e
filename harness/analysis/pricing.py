"""Cost of requests in USD: genai-prices' tables, a user override file, projections.

Cached tokens and cache-write tokens are *subsets* of input tokens (DESIGN §4). A request costs

    (input − cached − cache_write) · input_rate + cached · cached_input_rate
    + cache_write · cache_write_rate + output · output_rate

so no token is ever charged twice. Reasoning tokens are part of output tokens. Models without a
separate cache-write price (OpenAI's) charge writes as ordinary input, as genai-prices does.

Rates are resolved once per (model, service tier) and applied to whole arrays, tiered prices
(a cliff: above a prompt size, the whole request pays the tier's rate, as genai-prices computes
it) included.

``harness run`` resolves the prices of every model it will send to and records them in
``meta.json`` (:func:`price_snapshot`): analysis prices a run at the prices of its day, and the
commands that never send (analyze, report, gate, compare) need not import genai-prices, whose
package imports httpx2 for its price updater.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError, invalid_file

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROVIDER_ID = "openai"
_MTOK = 1_000_000
#: ModelPrices' rate fields, and genai-prices' name for each
PRICE_KINDS = {
    "input_mtok": "input_mtok",
    "cached_input_mtok": "cache_read_mtok",
    "cache_write_mtok": "cache_write_mtok",
    "output_mtok": "output_mtok",
}


class PriceOverride(BaseModel):
    """One model's prices in an override file, USD per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input_mtok: float = Field(ge=0)
    cached_input_mtok: float | None = Field(
        default=None, ge=0, description="default: input_mtok (no discount)"
    )
    cache_write_mtok: float | None = Field(default=None, ge=0, description="default: input_mtok")
    output_mtok: float = Field(ge=0)
    note: str | None = None


class PriceOverrideFile(BaseModel):
    """``{models: {name: {input_mtok, cached_input_mtok, cache_write_mtok, output_mtok}}}``."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, PriceOverride]


@dataclass(frozen=True)
class ModelPrices:
    """Resolved prices of one model (USD per million tokens) and where they came from."""

    model: str
    input_mtok: float
    cached_input_mtok: float
    cache_write_mtok: float
    output_mtok: float
    source: str
    price_date: str
    service_tier: str | None = None
    matched_model: str | None = None
    #: (rate field, start, rate): a request with more than ``start`` input tokens pays ``rate``
    #: for that field on all its tokens (the highest such tier wins)
    tiers: tuple[tuple[str, int, float], ...] = ()

    @property
    def tiered(self) -> bool:
        return bool(self.tiers)

    def _rate(self, kind: str, input_tokens: IntArray) -> FloatArray:
        rate = np.full(input_tokens.shape, float(getattr(self, kind)))
        for _, start, price in sorted(t for t in self.tiers if t[0] == kind):
            rate[input_tokens > start] = price
        return rate

    def cost_usd(
        self,
        input_tokens: IntArray,
        cached_tokens: IntArray,
        cache_write_tokens: IntArray,
        output_tokens: IntArray,
    ) -> FloatArray:
        """Vectorized per-request cost; cached and written tokens are carved out of input."""
        uncached = np.maximum(input_tokens - cached_tokens - cache_write_tokens, 0)
        micro = (
            uncached * self._rate("input_mtok", input_tokens)
            + cached_tokens * self._rate("cached_input_mtok", input_tokens)
            + cache_write_tokens * self._rate("cache_write_mtok", input_tokens)
            + output_tokens * self._rate("output_mtok", input_tokens)
        )
        return np.asarray(micro / _MTOK, dtype=np.float64)

    def to_record(self) -> dict[str, Any]:
        """A JSON-able dict (for ``meta.json``); :meth:`from_record` reads it back."""
        return asdict(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> ModelPrices:
        tiers = tuple((str(k), int(s), float(r)) for k, s, r in data.get("tiers", ()))
        return cls(**{**data, "tiers": tiers})


def genai_prices_version() -> str:
    import genai_prices

    return str(genai_prices.__version__)


def load_price_overrides(path: Path) -> dict[str, PriceOverride]:
    """Read a YAML or JSON override file; errors name the file and the bad field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read price file ({exc.strerror})") from exc
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise HarnessError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})"
        ) from exc
    try:
        parsed = PriceOverrideFile.model_validate(data)
    except ValidationError as exc:
        raise invalid_file(
            path,
            exc,
            "expected {models: {NAME: {input_mtok, cached_input_mtok, cache_write_mtok, "
            "output_mtok}}} in USD per million tokens",
        ) from exc
    return {name.lower(): model for name, model in parsed.models.items()}


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, Decimal | int | float) else None


def _unknown_warning(model: str, version: str) -> str:
    return (
        f"no price known for model {model!r} (genai-prices {version}): its cost is null — add it"
        " to a price file (--prices FILE)"
    )


class PriceBook:
    """Resolves and caches model prices: user overrides first, then the prices recorded when the
    run was made, then genai-prices' bundled tables."""

    def __init__(
        self,
        overrides: Mapping[str, PriceOverride] | None = None,
        *,
        override_file: Path | None = None,
        when: datetime | None = None,
        recorded: Mapping[str, Any] | None = None,
    ) -> None:
        self._overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        self.override_file = override_file
        self.when = when or datetime.now(tz=UTC)
        self._cache: dict[tuple[str, str | None], ModelPrices | None] = {}
        self.warnings: list[str] = []
        self._recorded: dict[tuple[str, str | None], ModelPrices | None] = {}
        self._recorded_source: str | None = None
        self._recorded_version: str | None = None
        if recorded:
            snap = PriceSnapshot.model_validate(recorded)
            self._recorded_source = snap.source
            self._recorded_version = snap.genai_prices_version
            for rec in snap.models:
                mp = ModelPrices.from_record(rec)
                self._recorded[(mp.model, mp.service_tier)] = mp
            for model, tier in snap.unknown:
                self._recorded[(model, tier)] = None
            # what the run was told when it resolved them (an override without a cached
            # price, an unknown model) is still true of these prices
            for model, said in snap.warnings.items():
                if model.lower() not in self._overrides:  # an override now prices it
                    self.warnings.extend(said)

    @property
    def genai_prices_version(self) -> str:
        """The genai-prices release behind the prices (the run's, when it recorded them)."""
        return self._recorded_version or genai_prices_version()

    @property
    def source(self) -> str:
        if self._recorded_source is not None:
            base = f"{self._recorded_source}, recorded when the run was made"
        else:
            base = f"genai-prices {genai_prices_version()} (bundled data)"
        return f"{self.override_file} overriding {base}" if self.override_file else base

    def prices(self, model: str, service_tier: str | None = None) -> ModelPrices | None:
        """Prices for a model (None, with a warning recorded, when nobody knows them)."""
        key = (model, service_tier)
        if key not in self._cache:
            self._cache[key] = self._resolve(model, service_tier)
        return self._cache[key]

    def resolved(self) -> list[ModelPrices]:
        """Every price looked up so far (for the summary's record of prices and sources)."""
        return [p for p in self._cache.values() if p is not None]

    def _resolve(self, model: str, service_tier: str | None) -> ModelPrices | None:
        date = self.when.date().isoformat()
        override = self._overrides.get(model.lower())
        if override is not None:
            return self._from_override(model, service_tier, override, date)
        if (model, service_tier) in self._recorded:
            return self._recorded[(model, service_tier)]  # its warnings came with the record
        return self._from_genai_prices(model, service_tier, date)

    def _from_override(
        self, model: str, service_tier: str | None, override: PriceOverride, date: str
    ) -> ModelPrices:
        if override.cached_input_mtok is None:
            # Silence here made "no discount" look like a measured cache price: say it.
            where = f" in {self.override_file}" if self.override_file else ""
            self.warnings.append(
                f"price override for {model!r}{where} has no cached_input_mtok: cached "
                "tokens are charged the full input price (no cache discount), so cost "
                "differences from caching do not show — add cached_input_mtok (OpenAI "
                "charges 10–50 % of the input price for cached tokens), or set it to "
                "input_mtok to confirm there is no discount"
            )
        return ModelPrices(
            model=model,
            input_mtok=override.input_mtok,
            cached_input_mtok=(
                override.cached_input_mtok
                if override.cached_input_mtok is not None
                else override.input_mtok
            ),
            cache_write_mtok=(
                override.cache_write_mtok
                if override.cache_write_mtok is not None
                else override.input_mtok
            ),
            output_mtok=override.output_mtok,
            source=f"override file {self.override_file}" if self.override_file else "override",
            price_date=date,
            service_tier=service_tier,
            matched_model=model,
        )

    def _from_genai_prices(
        self, model: str, service_tier: str | None, date: str
    ) -> ModelPrices | None:
        from genai_prices import Usage, calc_price
        from genai_prices.types import TieredPrices

        context = {"service_tier": service_tier} if service_tier else None
        try:
            calc = calc_price(
                Usage(input_tokens=0, output_tokens=0),
                model,
                provider_id=PROVIDER_ID,
                genai_request_timestamp=self.when,
                price_context=context,
            )
        except LookupError:
            self.warnings.append(_unknown_warning(model, genai_prices_version()))
            return None
        mp = calc.model_price
        raw = {ours: getattr(mp, theirs) for ours, theirs in PRICE_KINDS.items()}
        # A kind without its own price is charged as input (OpenAI has no cache-write price),
        # input's tiers included.
        for kind in ("cached_input_mtok", "cache_write_mtok"):
            if raw[kind] is None:
                raw[kind] = raw["input_mtok"]
        rates = {
            k: (_as_float(v.base) if isinstance(v, TieredPrices) else _as_float(v))
            for k, v in raw.items()
        }
        tiers = tuple(
            (kind, int(tier.start), float(tier.price))
            for kind, v in raw.items()
            if isinstance(v, TieredPrices)
            for tier in v.tiers
        )
        input_rate, output_rate = rates["input_mtok"], rates["output_mtok"]
        if input_rate is None or output_rate is None:
            self.warnings.append(f"genai-prices has no token prices for {model!r}: cost is null")
            return None
        return ModelPrices(
            model=model,
            input_mtok=input_rate,
            cached_input_mtok=rates["cached_input_mtok"] or 0.0,
            cache_write_mtok=rates["cache_write_mtok"] or 0.0,
            output_mtok=output_rate,
            source=f"genai-prices {genai_prices_version()}",
            price_date=date,
            service_tier=service_tier,
            matched_model=calc.model.id,
            tiers=tiers,
        )

    def cost_usd(
        self,
        model: str,
        service_tier: str | None,
        input_tokens: IntArray,
        cached_tokens: IntArray,
        cache_write_tokens: IntArray,
        output_tokens: IntArray,
    ) -> FloatArray | None:
        """Per-request costs for requests of one model and tier; None if its price is unknown."""
        prices = self.prices(model, service_tier)
        if prices is None:
            return None
        return prices.cost_usd(input_tokens, cached_tokens, cache_write_tokens, output_tokens)

    def snapshot(self, wanted: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
        """Resolve ``wanted`` (model, service tier) pairs now, for ``meta.json``."""
        known, unknown = [], []
        said: dict[str, list[str]] = {}
        for model, tier in sorted(set(wanted), key=lambda k: (k[0], k[1] or "")):
            before = len(self.warnings)
            found = self.prices(model, tier)
            for w in self.warnings[before:]:
                if w not in said.setdefault(model, []):
                    said[model].append(w)
            if found is None:
                unknown.append((model, tier))
            else:
                known.append(found.to_record())
        return PriceSnapshot(
            source=self.source,
            genai_prices_version=self.genai_prices_version,
            models=known,
            unknown=unknown,
            warnings={m: w for m, w in said.items() if w},
        ).model_dump(mode="json")


class PriceSnapshot(BaseModel):
    """The prices a run was made at, as ``meta.json`` keeps them (``RunMeta.prices``)."""

    model_config = ConfigDict(extra="forbid")

    source: str
    genai_prices_version: str
    models: list[dict[str, Any]] = Field(description="ModelPrices.to_record() of each")
    unknown: list[tuple[str, str | None]] = Field(
        default_factory=list, description="(model, service tier) nobody has a price for"
    )
    warnings: dict[str, list[str]] = Field(
        default_factory=dict, description="model → what resolving its prices warned about"
    )


def exact_cost_usd(
    model: str,
    input_tokens: int,
    cached_tokens: int,
    cache_write_tokens: int,
    output_tokens: int,
    *,
    when: datetime | None = None,
    service_tier: str | None = None,
) -> float:
    """One request's cost straight from ``genai_prices.calc_price`` (slow; the reference)."""
    from genai_prices import Usage, calc_price

    usage = Usage(
        input_tokens=input_tokens,
        cache_read_tokens=cached_tokens,
        cache_write_tokens=cache_write_tokens,
        output_tokens=output_tokens,
    )
    calc = calc_price(
        usage,
        model,
        provider_id=PROVIDER_ID,
        genai_request_timestamp=when or datetime.now(tz=UTC),
        price_context={"service_tier": service_tier} if service_tier else None,
    )
    return float(calc.total_price)


@dataclass(frozen=True)
class Projection:
    """Cost projected from a mean per-request cost."""

    per_request_usd: float
    per_1k_requests_usd: float
    per_1m_requests_usd: float


def project(mean_cost_usd: float) -> Projection | None:
    if not math.isfinite(mean_cost_usd):
        return None
    return Projection(mean_cost_usd, mean_cost_usd * 1_000, mean_cost_usd * 1_000_000)


def known_models() -> list[str]:
    """The model ids genai-prices prices for OpenAI (for "did you mean" on a mistyped model)."""
    from genai_prices.data_snapshot import get_snapshot

    return [
        m.id
        for p in get_snapshot().providers
        if p.id == PROVIDER_ID
        for m in p.models
        if not m.id.startswith("ft:")
    ]


def is_priced(model: str) -> bool:
    """Whether genai-prices has a price for ``model`` (exact names and dated snapshots)."""
    from genai_prices import Usage, calc_price

    try:
        calc_price(Usage(input_tokens=0, output_tokens=0), model, provider_id=PROVIDER_ID)
    except LookupError:
        return False
    return True
