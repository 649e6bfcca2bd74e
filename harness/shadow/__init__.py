"""Production shadow mode: mirror live Chat Completions calls to Responses, canary routing, and
record-only mode (an application's requests as Batch API input for ``harness import batch``).

Its public names load on first use, so importing a submodule stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import lazy_exports

__all__ = [
    "AsyncShadowClient",
    "BatchRecorder",
    "MergeResult",
    "Redactor",
    "ShadowClient",
    "ShadowConfig",
    "ShadowStats",
    "ShadowTarget",
    "drop_text",
    "enable_recording",
    "keep_text",
    "merge_shards",
    "neutral_from_chat_kwargs",
    "record",
    "redact_text",
    "sample_point",
    "shadow_responses_kwargs",
    "shadow_target",
]

if TYPE_CHECKING:
    from harness.shadow.client import AsyncShadowClient, ShadowClient, sample_point, shadow_target
    from harness.shadow.config import ShadowConfig, ShadowStats, ShadowTarget
    from harness.shadow.recorder import BatchRecorder, enable_recording, record
    from harness.shadow.store import (
        MergeResult,
        Redactor,
        drop_text,
        keep_text,
        merge_shards,
        redact_text,
    )
    from harness.translate.from_chat import neutral_from_chat_kwargs, shadow_responses_kwargs

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AsyncShadowClient": "harness.shadow.client",
        "BatchRecorder": "harness.shadow.recorder",
        "MergeResult": "harness.shadow.store",
        "Redactor": "harness.shadow.store",
        "ShadowClient": "harness.shadow.client",
        "ShadowConfig": "harness.shadow.config",
        "ShadowStats": "harness.shadow.config",
        "ShadowTarget": "harness.shadow.config",
        "drop_text": "harness.shadow.store",
        "enable_recording": "harness.shadow.recorder",
        "keep_text": "harness.shadow.store",
        "merge_shards": "harness.shadow.store",
        "neutral_from_chat_kwargs": "harness.translate.from_chat",
        "record": "harness.shadow.recorder",
        "redact_text": "harness.shadow.store",
        "sample_point": "harness.shadow.client",
        "shadow_responses_kwargs": "harness.translate.from_chat",
        "shadow_target": "harness.shadow.client",
    },
)
