"""Latency, caching, fault and content profiles of the emulator, and its run configuration.

A profile sets, per API (``chat`` / ``responses``):

- ``queue_ms`` — queueing before the response headers are sent (distribution).
- ``ttft_ms`` — time from the headers to the first token (distribution).
- ``cold_penalty_ms`` — extra time to the first token when the prompt prefix is *cold*: less
  than half of the prompt was seen before (within the cache TTL), e.g. the first turn of a
  conversation whose cache nonce is new.
- ``cold_ttft_factor`` — multiplies ``ttft + cold penalty + prefill`` on cold requests (the
  migration guide's "first request 2–3× slower" is ``2.5`` for ``responses``).
- ``prefill_ms_per_1k_tokens`` — extra time to the first token per 1,000 *uncached* input
  tokens, so prompt caching shows up in TTFT as it does on real servers.
- ``per_token_ms`` — delay between output tokens (drawn once per request).
- ``speed_factor`` — multiplies every delay of this API (``regressed``: responses ``1.25``).
- ``cache_hit_share`` — share of a cached prefix this API may reuse, rounded down to the
  1,024 + 128·k grid (``guide-claims``: chat ``0.6``, so Responses caches ~67 % better).
- ``cache_hit_probability`` — chance a cached prefix is found at all (routing misses).
- ``cache_ttl_s`` — in-memory retention: how long prefixes stay cached for a request with
  ``prompt_cache_retention: in_memory`` (the spec's default is ``24h``, kept 24 hours).
- ``bill_unrendered_reasoning`` — Responses only: bill earlier turns' reasoning items that are
  sent or held but not rendered (``reasoning.context: current_turn``) as uncached input.
  OpenAI does not document whether it bills them; default ``false`` (not counted).
- ``background_queue_ms`` — Responses only: how long a ``background: true`` response stays
  ``queued`` before it runs (then the usual timeline). OpenAI says background mode has a higher
  time to first token but gives no number, so this is a guess to set per target.
- ``faults`` — rates of 429 / 500 / 503 / slow headers, and (streams only) a cut connection,
  a ``response.failed`` event or an ``error`` event, and ``background_stream_drop`` (a background
  stream's connection dropped while the response runs on); see :class:`Faults`.

plus, for both: ``divergence`` (fraction of Responses words that differ from Chat's for the
same request, exact at ``temperature: 0``), ``content`` (reply lengths) and ``rate_limits``
(the ``x-ratelimit-*`` headers). Distributions are lognormal: ``{median: 250, sigma: 0.3}``, or
a bare number for a constant. All delays are in ms and multiplied by the run's ``time_scale``.

Named profiles ship as ``harness/emulator/profiles/<name>.yaml`` (each documents its numbers):
``parity`` (default; both APIs identical), ``guide-claims``, ``regressed``, ``zero``. A profile
file may start from another with ``extends: NAME`` (default ``parity``), and may set keys for
both APIs at once under ``both:``; ``chat:``/``responses:`` then override those. Mappings are
merged key by key, except distributions, which a new ``{median: ...}`` replaces whole.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import HarnessError, closest

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
PROFILE_NAMES = ("parity", "guide-claims", "regressed", "zero")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dist(_Strict):
    """A lognormal delay in ms: ``median · exp(sigma · N(0, 1))``, capped at ``max``."""

    median: float = Field(0.0, ge=0)
    sigma: float = Field(0.0, ge=0)
    max: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value: Any) -> Any:
        # A bare number in YAML means a constant delay.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"median": value}
        return value

    def sample(self, rng: random.Random) -> float:
        """One draw, in ms."""
        if self.median <= 0:
            return 0.0
        value = (
            self.median
            if self.sigma <= 0
            else self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        )
        return value if self.max is None else min(value, self.max)


class Faults(_Strict):
    """Per-request fault rates (each 0–1, sum ≤ 1; at most one fault per request).

    ``stream_cut`` (connection dropped mid-stream), ``response_failed`` and ``error_event``
    apply to streaming requests only; on Chat streams the last two become an
    ``{"error": {...}}`` data line, which is how Chat reports mid-stream errors.
    """

    rate_limit: float = Field(0.0, ge=0, le=1, description="429 + retry-after")
    server_error: float = Field(0.0, ge=0, le=1, description="500")
    overloaded: float = Field(0.0, ge=0, le=1, description="503")
    slow_headers: float = Field(0.0, ge=0, le=1, description="headers delayed by slow_headers_ms")
    stream_cut: float = Field(0.0, ge=0, le=1)
    response_failed: float = Field(0.0, ge=0, le=1)
    error_event: float = Field(0.0, ge=0, le=1)
    background_stream_drop: float = Field(
        0.0,
        ge=0,
        le=1,
        description="background streams only, drawn apart from the rates above: the "
        "connection drops mid-stream while the response runs on (resume with starting_after)",
    )
    retry_after_ms: Dist = Dist(median=1000.0, sigma=0.5, max=20000.0)
    slow_headers_ms: Dist = Dist(median=3000.0)

    @model_validator(mode="after")
    def _sum(self) -> Faults:
        if sum(self.rates(stream=True).values()) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        return self

    @property
    def any(self) -> bool:
        """Whether any fault can happen."""
        return any(self.rates(stream=True).values())

    def rates(self, *, stream: bool) -> dict[str, float]:
        """Fault name → rate, for a streaming or non-streaming request."""
        out = {
            "rate_limit": self.rate_limit,
            "server_error": self.server_error,
            "overloaded": self.overloaded,
            "slow_headers": self.slow_headers,
        }
        if stream:
            out |= {
                "stream_cut": self.stream_cut,
                "response_failed": self.response_failed,
                "error_event": self.error_event,
            }
        return out


class ApiProfile(_Strict):
    """Latency, cache and fault parameters of one API (see the module docstring)."""

    queue_ms: Dist = Dist()
    ttft_ms: Dist = Dist()
    cold_penalty_ms: Dist = Dist()
    cold_ttft_factor: float = Field(1.0, gt=0)
    prefill_ms_per_1k_tokens: float = Field(0.0, ge=0)
    per_token_ms: Dist = Dist()
    speed_factor: float = Field(1.0, gt=0)
    cache_hit_share: float = Field(1.0, ge=0, le=1)
    cache_hit_probability: float = Field(1.0, ge=0, le=1)
    cache_ttl_s: float = Field(600.0, ge=0)
    bill_unrendered_reasoning: bool = False
    background_queue_ms: Dist = Dist()
    faults: Faults = Faults()


class TokenRange(_Strict):
    """An inclusive range of token counts, drawn uniformly."""

    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _order(self) -> TokenRange:
        if self.max < self.min:
            raise ValueError("max is below min")
        return self


class ContentProfile(_Strict):
    """Reply lengths in output tokens (text replies; JSON and tool calls follow their schema)."""

    reply_tokens: TokenRange = TokenRange(min=20, max=120)
    short_reply_tokens: TokenRange = TokenRange(min=3, max=12)
    long_reply_tokens: int = Field(1800, ge=1, description="when the prompt asks for long output")
    reasoning_tokens: dict[str, int] = Field(
        default_factory=lambda: {
            "none": 0,
            "minimal": 0,
            "low": 96,
            "medium": 320,
            "high": 960,
            "xhigh": 1600,
            "max": 2400,
        },
        description="median reasoning tokens per reasoning effort (reasoning models)",
    )
    refusal_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of requests the model refuses (chat message.refusal, a Responses "
        "refusal part), drawn per request content so both APIs refuse the same requests",
    )


class RateLimits(_Strict):
    """Values of the ``x-ratelimit-*`` headers (a token bucket refilled per minute)."""

    requests_per_min: int = Field(30_000, ge=1)
    tokens_per_min: int = Field(150_000_000, ge=1)


class Profile(_Strict):
    """Everything that shapes the emulator's replies apart from the seed."""

    name: str = "custom"
    description: str = ""
    chat: ApiProfile = ApiProfile()
    responses: ApiProfile = ApiProfile()
    divergence: float = Field(0.0, ge=0, le=1)
    content: ContentProfile = ContentProfile()
    rate_limits: RateLimits = RateLimits()

    def api(self, api: str) -> ApiProfile:
        """The parameters of ``chat`` or ``responses``."""
        return self.chat if api == "chat" else self.responses

    def derive(self, overrides: dict[str, Any]) -> Profile:
        """A copy with ``overrides`` deep-merged in (``both:`` sets keys of both APIs).

        Raises :class:`HarnessError` naming the offending key.
        """
        data = self.model_dump()
        over = dict(overrides)
        both = over.pop("both", None) or {}
        for api in ("chat", "responses"):
            data[api] = _deep_merge(data[api], both)
        return _validate(_deep_merge(data, over), "overrides")


class EmulatorConfig(BaseModel):
    """How one emulator instance runs: profile, content seed, truth log and time scale."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    profile: Profile = Field(default_factory=lambda: load_profile("parity"))
    seed: int = 0
    truth_log: Path | None = None
    time_scale: float = Field(1.0, ge=0)
    #: bounds each store: responses, chat completions, conversations (oldest forgotten first)
    max_stored_responses: int = Field(100_000, ge=1)
    max_cache_entries: int = Field(2_000_000, ge=1)


# --- loading ------------------------------------------------------------------------------------


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        # A distribution ({median: ...}) is replaced whole: keeping an inherited sigma
        # would surprise whoever wrote ``{median: 50}``.
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "median" not in value:
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    from harness.scenario.yaml_safe import read_settings

    data = read_settings(path, f"profile {path}", "write a mapping of profile parameters")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HarnessError(f"profile {path}: expected a mapping of parameters at the top level")
    return data


def _raw(name_or_path: str, seen: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """The merged raw mapping of a profile (``extends`` resolved) and its source label."""
    if name_or_path in PROFILE_NAMES:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            close = closest(name_or_path, PROFILE_NAMES)
            hint = f"did you mean {close[0]}? " if close else ""
            raise HarnessError(
                f"profile {name_or_path!r}: no such profile — {hint}use one of "
                f"{', '.join(PROFILE_NAMES)} or a YAML file path"
            )
    if str(path) in seen:
        raise HarnessError(f"profile {path}: 'extends' loops back to itself")
    data = _read_yaml(path)
    parent = data.pop("extends", None if name_or_path == "parity" else "parity")
    if parent is not None and not isinstance(parent, str):
        raise HarnessError(f"profile {path}: extends: expected a profile name or file")
    both = data.pop("both", None)
    if both is not None and not isinstance(both, dict):
        raise HarnessError(f"profile {path}: both: expected a mapping of API parameters")
    if parent is not None:
        parent_path = parent if parent in PROFILE_NAMES else str(path.parent / parent)
        base, _ = _raw(parent_path, (*seen, str(path)))
        base.pop("name", None)
        base.pop("description", None)
    else:
        base = {}
    if both:
        for api in ("chat", "responses"):
            base[api] = _deep_merge(base.get(api, {}), both)
    data.setdefault("name", name_or_path if name_or_path in PROFILE_NAMES else path.stem)
    return _deep_merge(base, data), str(path)


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a named profile (``parity``, ``guide-claims``, ``regressed``, ``zero``) or a YAML file.

    Raises :class:`HarnessError` with one line naming the file and the offending key.
    """
    raw, source = _raw(str(name_or_path), ())
    return _validate(raw, source)


def _validate(raw: dict[str, Any], source: str) -> Profile:
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise HarnessError(f"profile {source}: {key}: {what}{more}") from None
