"""Offline token counting (bpe-openai)."""

from __future__ import annotations

import pytest

from harness.translate.tokens import count_content_tokens, count_text_tokens, encoding_name


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("gpt-4.1-mini", "o200k_base"),
        ("gpt-4o", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("some-local-llama", "o200k_base"),
    ],
)
def test_encoding_for_model(model: str, name: str) -> None:
    assert encoding_name(model) == name


def test_counts_are_real_bpe_counts() -> None:
    assert count_text_tokens("", "gpt-4.1-mini") == 0
    assert count_text_tokens("hello world", "gpt-4.1-mini") == 2
    # repetition is not a character-count approximation
    assert count_text_tokens("hello world " * 100, "gpt-4.1-mini") < 12 * 100 / 4


def test_special_token_text_in_user_input_counts_as_text() -> None:
    n = count_text_tokens("before <|endoftext|> after", "gpt-4.1-mini")
    assert n > 3


def test_content_parts_in_every_api_shape() -> None:
    text = count_text_tokens("What is in this chart?", "gpt-4o")
    for parts in (
        [
            {"type": "text", "text": "What is in this chart?"},
            {"type": "image_url", "image_url": {"url": "data:,", "detail": "low"}},
        ],
        [
            {"type": "input_text", "text": "What is in this chart?"},
            {"type": "input_image", "image_url": "data:,", "detail": "low"},
        ],
    ):
        assert count_content_tokens(parts, "gpt-4o") == text + 85
