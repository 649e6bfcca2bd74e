"""The ``summary.json`` schema: pydantic records with units in their names.

Null means "cannot exist" (no streaming → no TTFT; unknown price → no cost), never zero.
Ratios ``<a>_vs_<b>`` are a / b. ``ci95`` is a 95 % percentile bootstrap interval.
See docs/summary-schema.md for the field list.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.records import ReplayedCassette, replay_label

#: 2: ``n_pairs`` counts conversations (prompt × repeat), no longer turns, and ``decision``
#: rests on it — a version-1 file re-decided as if new would pass the minimum sample size.
SUMMARY_SCHEMA_VERSION = 2

Interval = tuple[float, float]
Verdict = Literal["supported", "contradicted", "inconclusive"]
#: :func:`harness.analysis.decide.decide` (a's view of a vs b); one spelling everywhere.
Decision = Literal["better", "worse", "equivalent", "unclear", "too_few_samples"]
ClaimUnit = Literal["ratio", "relative", "points"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LatencyStats(_Record):
    """Distribution of one latency over an arm's successful requests, in ms."""

    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    ci95: Interval | None = Field(description="95 % bootstrap interval of p50")


class Estimate(_Record):
    """A value with its 95 % interval."""

    value: float | None
    ci95: Interval | None = None


class Effect(_Record):
    """A comparison: ratio a/b (null hypothesis 1) or delta a−b (null hypothesis 0)."""

    value: float | None
    ci95: Interval | None
    significant: bool | None = Field(
        description="the interval excludes 1 (ratio) or 0 (delta) by more than rounding"
    )
    n_pairs: int = Field(description="conversations (prompt × repeat) with a value in both arms")
    decision: Decision | None = Field(
        default=None,
        description="the one decision rule (harness.analysis.decide): better / worse beyond the "
        "margin, equivalent inside it, unclear, or too_few_samples (no interval); null for "
        "effects without a rule",
    )
    margin: float | None = Field(
        default=None, description="equivalence margin in the effect's unit (0.10 = ±10 %)"
    )


class TokenStats(_Record):
    total: int
    mean: float
    requests: int = Field(description="requests that reported usage")


class CacheStats(_Record):
    """Prompt caching: OpenAI caches prompts of ≥ 1,024 tokens."""

    eligible_requests: int = Field(description="requests with ≥ 1,024 input tokens")
    eligible_input_tokens: int
    eligible_hit_ratio: float | None = Field(description="cached / eligible input tokens")
    hit_requests: int = Field(description="requests with any cached tokens")
    cache_write_tokens: int


class WeightedCost(_Record):
    """Cost per request with each request counted as often as its prompt occurs (``weight``),
    with intervals of the same weighted quantity."""

    per_request_usd: float
    per_1k_requests_usd: float
    per_1m_requests_usd: float
    requests_represented: int = Field(description="sum of the weights of the priced requests")
    per_request_usd_ci95: Interval | None = Field(
        default=None,
        description="95 % bootstrap interval of the weighted mean (each resample weighs a "
        "request by its prompt's weight × how often the resample drew its conversation); null "
        "below the minimum sample",
    )
    per_1k_requests_usd_ci95: Interval | None = None
    per_1m_requests_usd_ci95: Interval | None = None
    effective_conversations: int | None = Field(
        default=None,
        description="conversations the weighted mean rests on, Kish's (Σw)²/Σw² over "
        "conversations: a mix dominated by one prompt rests on about that prompt's repeats; "
        "below the minimum (10) there is no interval",
    )


class CostStats(_Record):
    total_usd: float
    per_request_usd: Estimate
    per_1k_requests_usd: float
    per_1m_requests_usd: float
    priced_requests: int
    weighted: WeightedCost | None = Field(
        default=None,
        description="the same figures weighted by prompt weight (the traffic mix); null when "
        "every prompt weighs 1",
    )


class TurnStats(_Record):
    """One turn of every conversation of an arm (turn 1 is cold)."""

    turn: int
    requests: int
    errors: int
    ttft_ms_p50: float | None
    total_ms_p50: float | None
    input_tokens_mean: float | None
    cached_tokens_mean: float | None
    cache_hit_ratio: float | None
    cost_usd_mean: float | None


class SaturationStats(_Record):
    """How far the client's own event loop held up this arm's timestamps."""

    timed_requests: int = Field(description="requests with a measured loop lag")
    saturated: int = Field(description="timed while the client's loop was saturated")
    late: int = Field(description="loop lag beyond the bound, whatever the cause")
    lag_p50_ms: float
    lag_max_ms: float


class BackgroundStats(_Record):
    """An arm's ``background: true`` requests: time to queued, queue wait, polling, resumes.

    Latencies are over requests that reached a final status (no interval: these describe the
    target's background mode, they are not compared between arms). Without a stream the queue
    wait and the poll lag are upper bounds at the poll interval's resolution.
    """

    requests: int = Field(description="measured requests sent in background mode")
    time_to_queued_ms: LatencyStats | None
    queue_wait_ms: LatencyStats | None
    total_ms: LatencyStats | None
    polled_requests: int
    polls_mean: float | None = Field(description="GETs per polled request")
    poll_interval_ms: float | None
    poll_lag_max_ms: LatencyStats | None = Field(
        description="completion → seen by a poll, at most (time since the previous poll)"
    )
    streamed_requests: int
    resumed_requests: int = Field(description="streams that dropped and were resumed")
    resumes: int = Field(description="resumed streams in all (starting_after=<last seen>)")
    events_out_of_order: int = Field(
        description="streamed requests whose sequence numbers skipped or repeated one"
    )
    final_status: dict[str, int]


class ArmSummary(_Record):
    api: str | None
    model: str | None
    requests: int = Field(description="measured requests (warm-up excluded)")
    errors: int
    error_rate: float | None
    refusals: int = Field(
        default=0, description="replies the model refused: ok and measured, counted apart"
    )
    warmup_excluded: int
    ttft_ms: LatencyStats | None
    ttfb_ms: LatencyStats | None
    total_ms: LatencyStats | None
    sdk_ttft_ms: LatencyStats | None
    sdk_ttfb_ms: LatencyStats | None
    sdk_total_ms: LatencyStats | None
    first_output_ms: LatencyStats | None = Field(
        default=None, description="first output of any kind, reasoning included; streams only"
    )
    cold_ttft_ms: LatencyStats | None
    warm_ttft_ms: LatencyStats | None
    cold_total_ms: LatencyStats | None
    warm_total_ms: LatencyStats | None
    input_tokens: TokenStats | None
    cached_tokens: TokenStats | None
    cache_write_tokens: TokenStats | None
    output_tokens: TokenStats | None
    reasoning_tokens: TokenStats | None
    cache_hit_ratio: Estimate | None = Field(description="Σ cached / Σ input tokens")
    cache: CacheStats | None
    cost_usd: CostStats | None
    per_turn: list[TurnStats]
    finish: dict[str, int]
    error_types: dict[str, int]
    saturation: SaturationStats | None = Field(
        default=None, description="the client's event loop while this arm was timed"
    )
    background: BackgroundStats | None = Field(
        default=None, description="scenario background: true (Responses arms only)"
    )


class SimilarityStats(_Record):
    """One kind of similarity over the pairs where it applies (0 = nothing alike, 1 = same)."""

    n_pairs: int
    mean: float | None
    min: float | None
    noise_floor: float | None = Field(description="mean of the same kind on an A/A comparison")
    noise_floor_from: str | None
    below_noise_floor: Effect | None = Field(
        description="noise_floor − mean over keys both comparisons have (delta, paired)"
    )


class JsonStats(SimilarityStats):
    a_parse_rate: float | None
    b_parse_rate: float | None
    a_schema_valid_rate: float | None
    b_schema_valid_rate: float | None


class ToolCallStats(SimilarityStats):
    name_agreement: float | None


class Similarity(_Record):
    text: SimilarityStats | None
    json_: JsonStats | None = Field(alias="json")
    tool_calls: ToolCallStats | None
    semantic: SimilarityStats | None


class Power(_Record):
    """How many repeats would detect ``effect`` on ``metric`` at the given (target) power:
    "detect" is the verdicts' and gates' rule, the 95 % interval wholly beyond ``margin``."""

    metric: str
    effect: float
    margin: float = Field(default=0.0, description="equivalence margin the interval must clear")
    power: float = Field(description="target power (harness plan --target-power; default 80 %)")
    alpha: float
    sigma_log: float | None = Field(description="robust spread of log latency, both arms pooled")
    n_pairs: int
    repeats: int
    samples_needed: int | None
    repeats_needed: int | None


class Comparison(_Record):
    a: str
    b: str
    replicate: bool = Field(description="an A/A comparison (the noise floor)")
    n_pairs: int = Field(description="conversations (prompt × repeat) both arms have")
    ttft_p50_ratio: Effect | None
    first_output_p50_ratio: Effect | None = None
    ttfb_p50_ratio: Effect | None
    total_p50_ratio: Effect | None
    sdk_ttft_p50_ratio: Effect | None
    sdk_total_p50_ratio: Effect | None
    cold_ttft_ratio: Effect | None
    warm_ttft_ratio: Effect | None
    cold_total_ratio: Effect | None
    cache_hit_ratio_delta: Effect | None
    cache_hit_improvement: Effect | None = Field(
        description="relative: a's hit ratio / b's − 1; null when b cached nothing"
    )
    cost_ratio: Effect | None = Field(description="mean cost per request, a / b")
    weighted_cost_ratio: Effect | None = Field(
        default=None,
        description="cost_ratio under the traffic mix: each request counted as often as its "
        "prompt occurs (``weight``); ``n_pairs`` counts effective conversations (see "
        "WeightedCost.effective_conversations); null when every prompt weighs 1",
    )
    output_tokens_ratio: Effect | None
    error_rate_delta: Effect | None
    similarity: Similarity
    power: Power | None
    client_saturated: int = Field(
        default=0, description="requests of either arm timed on a saturated client loop"
    )
    latency_not_judged: str | None = Field(
        default=None,
        description="why no latency effect is decided (all 'unclear'), e.g. more than 5 % of "
        "the pair's requests timed on a saturated client; null when they are",
    )
    min_repeats: int | None = Field(
        default=None,
        description="repeats per prompt that give the minimum number of conversations",
    )
    cache_contaminated: bool = Field(
        default=False,
        description="shadow pairs: one side was sent right after the other "
        "with the same prompt prefix and no cache nonce, so its cache hits are not its own; "
        "cache_hit_ratio_delta, cache_hit_improvement and cost_ratio are null (not assessable)",
    )


class Claim(_Record):
    """One migration-guide claim tested on this run."""

    claim: str
    quote: str
    metric: str | None
    unit: ClaimUnit
    value: float | None
    ci95: Interval | None
    claimed_range: Interval | None
    claimed: str = Field(description="the claim in words, e.g. '2–3× slower'")
    verdict: Verdict
    note: str
    injected_by_profile: str | None
    contaminated: bool = Field(
        default=False,
        description="the figures behind the claim are not clean (cache of a "
        "shadow run): not assessable, the verdict is inconclusive whatever the numbers",
    )


class ReferenceScore(_Record):
    """An arm's final replies compared with a prompt's reference answer (text similarity)."""

    n: int = Field(description="conversations whose final reply was text")
    mean: float | None
    min: float | None


class PromptSummary(_Record):
    weight: int
    reference: bool = Field(description="the prompt has a reference answer")
    reference_similarity: dict[str, ReferenceScore] = Field(description="by arm")
    arm_similarity: dict[str, float | None] = Field(
        description="mean text similarity of the arms' replies, by comparison <a>_vs_<b>"
    )


class StateTurn(_Record):
    """One turn of every conversation of an arm, as the server held its state."""

    turn: int
    requests: int
    errors: int
    input_tokens_mean: float | None = Field(description="without the cache nonce")
    cached_tokens_mean: float | None
    cache_write_tokens_mean: float | None
    cached_share: float | None = Field(description="Σ cached / Σ input tokens of the turn")
    items_sent_mean: float | None = Field(description="input items (messages on chat) sent")
    items_held_mean: float | None = Field(
        description="items the server holds after the turn (state-keeping arms)"
    )
    duplicate_items: int = Field(description="items sent that the server already held")
    forks: int | None = Field(
        description="turns whose server items no longer extend the earlier ones; null when no "
        "turn could be checked (a chain whose server lists only each response's own input)"
    )
    cost_usd_mean: float | None
    ttft_ms_p50: float | None
    total_ms_p50: float | None
    similarity_to_chat: float | None = Field(
        description="mean word similarity of this turn's replies to the chat arm's"
    )


class StateArm(_Record):
    """One arm of the conversation-state section."""

    state: str = Field(description="history | chained | conversation")
    label: str
    lost_turns: int = Field(
        description="turns skipped because the server lost the chain or conversation"
    )
    turns: list[StateTurn]
    cache_claim: Claim | None = Field(
        description="'cache utilization 40–80 % better' on this arm vs chat (its comparison)"
    )


class ConversationStateSummary(_Record):
    """How each way of keeping a conversation's state fared, turn by turn."""

    arms: dict[str, StateArm]


class ScenarioSummary(_Record):
    name: str
    observations: int
    arms: dict[str, ArmSummary]
    comparisons: dict[str, Comparison]
    claims: dict[str, Claim]
    prompts: dict[str, PromptSummary] = Field(
        default_factory=dict,
        description="per prompt, when any prompt has a weight above 1 or a reference",
    )
    conversation_state: ConversationStateSummary | None = Field(
        default=None,
        description="per arm and turn: tokens, items sent and held, cost, latency, similarity "
        "to chat, and the caching claim per state mode (when a state arm or variant ran)",
    )


class ModelPriceInfo(_Record):
    model: str
    service_tier: str | None
    matched_model: str | None
    input_mtok: float
    cached_input_mtok: float
    cache_write_mtok: float
    output_mtok: float
    tiered: bool
    source: str
    price_date: str


class PricingInfo(_Record):
    source: str
    genai_prices_version: str
    override_file: str | None
    models: list[ModelPriceInfo]


class BootstrapInfo(_Record):
    seed: int
    resamples: int
    confidence: float
    unit: str
    method: str
    min_conversations: int | None = Field(
        default=None, description="below this, no interval and no verdict"
    )
    correction: str | None = Field(default=None, description="small-sample correction, named")


class Summary(_Record):
    schema_version: int = SUMMARY_SCHEMA_VERSION
    harness_version: str
    run_id: str
    target: str
    target_label: str
    is_emulator: bool
    emulator_profile: str | None
    replay: list[ReplayedCassette] = Field(
        default_factory=list,
        description="a replay's cassettes and how each was recorded (empty: not a replay)",
    )
    observations: int = Field(description="records read (after de-duplicating resumed keys)")
    warmup_excluded: int
    bootstrap: BootstrapInfo
    pricing: PricingInfo
    warnings: list[str]
    scenarios: list[ScenarioSummary]

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form written to summary.json (``json`` key spelled as such)."""
        return self.model_dump(mode="json", by_alias=True)

    @property
    def replay_label(self) -> str | None:
        """``replay of <cassette>, recorded <date> against <target> (…)``; None: not a replay."""
        return replay_label(self.replay)


class RunArmComparison(_Record):
    """One arm across two runs (a = candidate, b = baseline; ratios a/b), paired by prompt ×
    turn × repeat and widened by the run-level spread (:mod:`harness.analysis.between`).

    ``n_pairs`` counts the conversations (prompt × repeat) both sides have.
    """

    ttft_p50_ratio: Effect | None = None
    first_output_p50_ratio: Effect | None = None
    ttfb_p50_ratio: Effect | None = None
    total_p50_ratio: Effect | None = None
    sdk_ttft_p50_ratio: Effect | None = None
    sdk_total_p50_ratio: Effect | None = None
    cold_ttft_ratio: Effect | None = None
    warm_ttft_ratio: Effect | None = None
    cold_total_ratio: Effect | None = None
    cache_hit_ratio_delta: Effect | None = None
    cache_hit_improvement: Effect | None = None
    cost_ratio: Effect | None = None
    output_tokens_ratio: Effect | None = None
    error_rate_delta: Effect | None = None


class RunSpreadInfo(_Record):
    """The run-to-run spread a between-run interval includes (see
    :mod:`harness.analysis.between`): log-sd for ratios, the metric's unit for deltas."""

    baseline_runs: int
    source: str = Field(description="'estimated from N baseline runs', 'assumed (…)' or 'given'")
    spread: dict[str, float]


class RunComparison(_Record):
    """``compare_runs(a, b)``: the same scenarios and arms in two runs."""

    schema_version: int = SUMMARY_SCHEMA_VERSION
    a_run_id: str
    b_run_id: str
    intervals: bool = Field(description="false when compared from summaries (no samples)")
    bootstrap: BootstrapInfo | None
    scenarios: dict[str, dict[str, RunArmComparison]]
    run_spread: RunSpreadInfo | None = Field(
        default=None, description="run-level variance in the intervals (None from summaries)"
    )
