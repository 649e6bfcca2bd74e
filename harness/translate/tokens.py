"""Token counting with a real BPE tokenizer available offline (``bpe-openai`` ships o200k/cl100k).

Models the tokenizer package does not know fall back to ``o200k_base`` (every current OpenAI
chat model uses it); legacy ``gpt-3.5``/``gpt-4`` (non-``o``) names use ``cl100k_base``.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Protocol


class _Encoding(Protocol):
    name: str

    def encode_ordinary(self, text: str) -> list[int]: ...

    def decode(self, tokens: list[int]) -> str: ...


@cache
def encoding_name(model: str) -> str:
    """The tokenizer name for a model id (never fails: unknown models get ``o200k_base``)."""
    import bpe_openai

    try:
        return str(bpe_openai.encoding_name_for_model(model))
    except Exception:
        legacy = model.startswith(("gpt-3.5", "gpt-35")) or (
            model.startswith("gpt-4") and not model.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5"))
        )
        return "cl100k_base" if legacy else "o200k_base"


@cache
def get_encoding(model: str) -> _Encoding:
    import bpe_openai

    enc: _Encoding = bpe_openai.get_encoding(encoding_name(model))
    return enc


def count_text_tokens(text: str, model: str) -> int:
    """Tokens in a plain string (special-token text such as ``<|endoftext|>`` counts as text)."""
    return len(get_encoding(model).encode_ordinary(text)) if text else 0


#: Per-message framing tokens of the chat format (role markers), per OpenAI's cookbook.
MESSAGE_OVERHEAD_TOKENS = 3
REPLY_PRIMING_TOKENS = 3
IMAGE_TOKENS = {"low": 85, "high": 765, "auto": 765}
#: OpenAI caches prompts of at least this many input tokens (then hits come in 1,024 + 128·k).
#: The planner estimates which prompts are eligible; the analysis counts eligible requests.
CACHE_MIN_TOKENS = 1024


def count_content_tokens(content: Any, model: str) -> int:
    """Tokens of a message content: a string, or a list of text/image parts in any API shape."""
    if content is None:
        return 0
    if isinstance(content, str):
        return count_text_tokens(content, model)
    total = 0
    for part in content:
        if not isinstance(part, dict):
            part = part.model_dump() if hasattr(part, "model_dump") else {"text": str(part)}
        text = part.get("text")
        if isinstance(text, str):
            total += count_text_tokens(text, model)
        elif part.get("type") in ("image", "image_url", "input_image"):
            image = part.get("image_url")
            detail = (
                (image.get("detail") if isinstance(image, dict) else None)
                or part.get("detail")
                or "auto"
            )
            total += IMAGE_TOKENS.get(detail, IMAGE_TOKENS["auto"])
        else:
            total += count_text_tokens(json.dumps(part, sort_keys=True), model)
    return total
