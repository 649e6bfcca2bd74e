"""The models the emulator knows: snapshot names, reasoning or not, limits.

Unknown models get OpenAI's 404 ``model_not_found``. Every model here uses ``o200k_base``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model: the alias clients send, the snapshot replies name, and its limits."""

    id: str
    snapshot: str
    reasoning: bool
    context_window: int
    max_output_tokens: int
    created: int

    @property
    def verbosity(self) -> bool:
        """Whether the model takes ``verbosity`` (the gpt-5 family; gpt-4.1 answers 400)."""
        return self.id.startswith("gpt-5")

    @property
    def o_series(self) -> bool:
        """o3, o3-mini, o4-mini: chat refuses ``parallel_tool_calls`` on them."""
        return self.id.startswith("o")


_TABLE = (
    ModelInfo("gpt-4.1", "gpt-4.1-2025-04-14", False, 1_047_576, 32_768, 1744316542),
    ModelInfo("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", False, 1_047_576, 32_768, 1744317547),
    ModelInfo("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", False, 1_047_576, 32_768, 1744321707),
    ModelInfo("gpt-4o", "gpt-4o-2024-08-06", False, 128_000, 16_384, 1715367049),
    ModelInfo("gpt-4o-mini", "gpt-4o-mini-2024-07-18", False, 128_000, 16_384, 1721172741),
    ModelInfo("gpt-5", "gpt-5-2025-08-07", True, 400_000, 128_000, 1754425777),
    ModelInfo("gpt-5-mini", "gpt-5-mini-2025-08-07", True, 400_000, 128_000, 1754425867),
    ModelInfo("gpt-5-nano", "gpt-5-nano-2025-08-07", True, 400_000, 128_000, 1754426303),
    ModelInfo("o3", "o3-2025-04-16", True, 200_000, 100_000, 1744225308),
    ModelInfo("o3-mini", "o3-mini-2025-01-31", True, 200_000, 100_000, 1737146383),
    ModelInfo("o4-mini", "o4-mini-2025-04-16", True, 200_000, 100_000, 1744225351),
)

#: Alias and snapshot id → model.
MODELS: dict[str, ModelInfo] = {m.id: m for m in _TABLE} | {m.snapshot: m for m in _TABLE}


def find_model(name: str) -> ModelInfo | None:
    """The model for an alias or snapshot id, or None when unknown."""
    return MODELS.get(name)


def model_list() -> list[dict[str, object]]:
    """``GET /v1/models`` data: one entry per alias and snapshot."""
    return [
        {"id": name, "object": "model", "created": m.created, "owned_by": "system"}
        for name, m in MODELS.items()
    ]
