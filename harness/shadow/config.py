"""Settings, counters and target of the shadow side (records shared by both modes).

:class:`ShadowConfig` is what a :class:`~harness.shadow.client.ShadowClient` is built with,
:class:`ShadowStats` what it counts (one file per application process, summed by the merge),
:class:`ShadowTarget` where mirrored calls go. All three pickle, so a sidecar process
(:mod:`harness.shadow.sidecar`) gets them as they are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from harness.shadow.store import Redactor, redact_text

ClientKind = Literal["sdk", "raw"]
Mode = Literal["process", "thread"]


@dataclass(frozen=True)
class ShadowConfig:
    """How a :class:`~harness.shadow.client.ShadowClient` samples, sends, limits and records.

    Rates are shares of all calls: a call goes to the canary if its sampling point is below
    ``canary_rate``, is mirrored if it falls in the next ``sample_rate``, else passes through
    untouched (so the two never overlap and each share is exact).
    """

    run_dir: Path | None = None
    #: "process" (default): the shadow side runs in a sidecar process at lower CPU priority,
    #: so its CPU and GIL use never delay the application's threads; "thread": in this
    #: process, on background threads (no extra process; the redact hook may be any callable)
    mode: Mode = "process"
    #: the sidecar's CPU priority: "nice" (default) lowers it by 10; "idle" also asks Linux for
    #: SCHED_IDLE — it then runs only on CPUs nothing else wants: the least effect on the
    #: application, but on a busy machine the mirror's own timings stretch and more calls are
    #: dropped (counted)
    sidecar_priority: Literal["nice", "idle"] = "nice"
    #: where the run directory goes when ``run_dir`` is not given (``runs/<run_id>/``)
    runs_dir: Path = Path("runs")
    #: default: ``<UTC date>-shadow-<scenario>``, the same in every process started that day
    run_id: str | None = None
    scenario: str = "shadow"
    sample_rate: float = 0.10
    canary_rate: float = 0.0
    #: salt of the sampling hash and seed of the fallback RNG (calls without a key)
    seed: int = 0
    #: ``metadata`` field holding the sampling key (else ``shadow_key=``, safety_identifier,
    #: user, then a seeded random draw)
    key_metadata_field: str | None = None
    #: Responses target of the shadow calls; default: the wrapped client's base URL and key
    shadow_base_url: str | None = None
    shadow_api_key: str | None = None
    #: "raw" (default): lean httpx2 + SSE client, about a fifth of the SDK's CPU per call;
    #: "sdk": the official SDK, so sdk_* timings compare SDK with SDK
    shadow_client: ClientKind = "raw"
    max_queue: int = 1000
    max_concurrency: int = 8
    timeout_s: float = 30.0
    redact: Redactor = redact_text
    #: chat parameters the shadow call drops instead of rejecting (e.g. {"seed"})
    ignore_params: frozenset[str] = frozenset()
    max_shard_bytes: int = 64 * 1024 * 1024
    max_shard_age_s: float = 3600.0
    fsync_every: int = 16
    fsync_interval_s: float = 1.0
    drain_timeout_s: float = 10.0
    #: time the application's calls on the wire too (wraps its pool's network backend)
    wire_clock: bool = True

    def __post_init__(self) -> None:
        for name in ("sample_rate", "canary_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.sample_rate + self.canary_rate > 1.0 + 1e-12:
            raise ValueError("sample_rate + canary_rate must not exceed 1")
        if self.max_queue < 0 or self.max_concurrency < 1 or self.timeout_s <= 0:
            raise ValueError("max_queue ≥ 0, max_concurrency ≥ 1 and timeout_s > 0 required")
        if self.mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', not {self.mode!r}")
        if self.sidecar_priority not in ("nice", "idle"):
            raise ValueError(
                f"sidecar_priority must be 'nice' or 'idle', not {self.sidecar_priority!r}"
            )

    def resolved_run_dir(self) -> Path:
        if self.run_dir is not None:
            return self.run_dir
        run_id = self.run_id or f"{time.strftime('%Y%m%d', time.gmtime())}-shadow-{self.scenario}"
        return self.runs_dir / run_id

    def describe(self) -> dict[str, Any]:
        """The settings recorded in ``meta.json`` (no credentials)."""
        return {
            "mode": self.mode,
            "sidecar_priority": self.sidecar_priority,
            "scenario": self.scenario,
            "sample_rate": self.sample_rate,
            "canary_rate": self.canary_rate,
            "seed": self.seed,
            "key_metadata_field": self.key_metadata_field,
            "shadow_client": self.shadow_client,
            "max_queue": self.max_queue,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "redact": getattr(self.redact, "__name__", repr(self.redact)),
            "ignore_params": sorted(self.ignore_params),
            "wire_clock": self.wire_clock,
        }


@dataclass
class ShadowStats:
    """Counters of one application process (``shadow-stats-*.json``; summed by the merge).

    Every mirrored call ends in exactly one of: ``pairs_written``, ``pairs_failed``,
    ``dropped_queue_full``, ``dropped_closed``, ``dropped_sidecar_down``,
    ``abandoned_streams``, ``cancelled_at_close``, ``lost_in_crash`` — so after
    ``flush()``/``close()`` their sum is ``sampled`` (:attr:`unsettled` is 0).
    """

    calls: int = 0
    #: mirrored calls (the sampled share of ``calls``)
    sampled: int = 0
    canary: int = 0
    #: mirrored calls accepted by the shadow side (the rest were dropped at once)
    enqueued: int = 0
    dropped_queue_full: int = 0
    #: the shadow side was closed already
    dropped_closed: int = 0
    #: the sidecar process is down for good (it crashed more often than it may be restarted)
    dropped_sidecar_down: int = 0
    abandoned_streams: int = 0
    pairs_written: int = 0
    #: accepted, then not written: a bug on the shadow side or a write error (both counted
    #: and logged), or a request the sidecar cannot be sent (not picklable)
    pairs_failed: int = 0
    #: accepted by a sidecar process that died before writing them
    lost_in_crash: int = 0
    #: sidecar process exits nobody asked for (each logged; restarted up to 3 times)
    sidecar_crashes: int = 0
    shadow_ok: int = 0
    shadow_errors: int = 0
    untranslatable: int = 0
    timeouts: int = 0
    internal_errors: int = 0
    cancelled_at_close: int = 0
    canary_served: int = 0
    canary_fallbacks: int = 0
    #: canary records written, and not written (queue full, closed, lost with a sidecar)
    canary_written: int = 0
    canary_dropped: int = 0
    write_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def unsettled(self) -> int:
        """Mirrored calls still queued or in flight (0 after a successful flush or close)."""
        return self.sampled - (
            self.pairs_written
            + self.pairs_failed
            + self.dropped_queue_full
            + self.dropped_closed
            + self.dropped_sidecar_down
            + self.abandoned_streams
            + self.cancelled_at_close
            + self.lost_in_crash
        )


STAT_FIELDS = tuple(f.name for f in fields(ShadowStats))


@dataclass(frozen=True)
class ShadowTarget:
    """Where mirrored calls go and what they send besides the body (never logged or written)."""

    base_url: str
    api_key: str = field(repr=False)
    #: the wrapped client's organization/project/default headers (same target only)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 30.0
