"""Probes of a target's behaviour that a shadow run's numbers depend on.

``cache_sharing``: does the target keep one prompt cache for both APIs? A prompt cache is keyed
by prefix, not by API (DESIGN §4), so on such a target the second API to see a prompt finds it
warm — and a shadow run without cache isolation would measure the order, not the API.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from harness.runner.target import Target
from harness.translate.convert import to_chat_kwargs, to_responses_kwargs
from harness.translate.request import Message, NeutralRequest, Params
from harness.transport.client import CallResult, Transport

#: Filler long enough to be cacheable (OpenAI caches prompts of ≥ 1,024 tokens); also used by
#: the capability probe (harness.runner.capabilities).
CACHEABLE_FILLER = " ".join(
    f"Rule {i}: answer politely, cite the policy section, and keep it short." for i in range(1, 121)
)


@dataclass(frozen=True)
class CacheSharingResult:
    """Cached tokens the *second* API reported on its first sight of a prompt, both orders."""

    chat_then_responses: int
    responses_then_chat: int
    input_tokens: int

    @property
    def shared(self) -> bool:
        return self.chat_then_responses > 0 or self.responses_then_chat > 0

    def explain(self) -> str:
        if self.shared:
            return (
                f"shared: Responses found {self.chat_then_responses} of ~"
                f"{self.input_tokens} tokens cached after Chat saw the prompt, Chat found "
                f"{self.responses_then_chat} after Responses — keep cache_isolation on "
                "(the default), or the second arm is measured warm"
            )
        return (
            "not shared: neither API found the other's prompt cached — cross-arm "
            "contamination is not a concern on this target"
        )


def _request(model: str, nonce: str) -> NeutralRequest:
    return NeutralRequest(
        model=model,
        params=Params(stream=False, max_output_tokens=16),
        messages=(
            Message(role="system", content=f"[probe {nonce}] {CACHEABLE_FILLER}"),
            Message(role="user", content="Reply with OK."),
        ),
    )


async def _send(transport: Transport, api: str, request: NeutralRequest) -> CallResult:
    if api == "chat":
        return await transport.send("chat", to_chat_kwargs(request))
    return await transport.send("responses", to_responses_kwargs(request))


async def probe_cache_sharing(
    target: Target, model: str = "gpt-4.1-mini", settle_s: float = 1.0
) -> CacheSharingResult:
    """Send a fresh ≥1,024-token prompt to one API, then the same to the other (both orders)."""
    transport = Transport(target.base_url, target.api_key, kind="raw")
    try:
        seen: list[int] = []
        input_tokens = 0
        for first, second in (("chat", "responses"), ("responses", "chat")):
            request = _request(model, secrets.token_hex(4))
            warm = await _send(transport, first, request)
            if not warm.ok:
                raise RuntimeError(f"probe request to {first} failed: {warm.error_message}")
            await asyncio.sleep(settle_s)  # let the cache write land before the second call
            result = await _send(transport, second, request)
            if not result.ok or result.usage is None:
                raise RuntimeError(f"probe request to {second} failed: {result.error_message}")
            seen.append(result.usage.cached_tokens)
            input_tokens = result.usage.input_tokens
        return CacheSharingResult(seen[0], seen[1], input_tokens)
    finally:
        await transport.aclose()
