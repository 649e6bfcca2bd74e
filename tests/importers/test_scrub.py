"""What the scrubber removes, and what it must leave alone (dates, amounts, ids)."""

from __future__ import annotations

import pytest

from harness.importers.scrub import Scrubber


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("key sk-proj-AbCdEfGhIjKlMnOpQrStUv12 ok", "key [redacted-api-key] ok", "api-key"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [redacted-api-key]", "api-key"),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [redacted-api-key]", "api-key"),
        (
            "Authorization: Bearer abc.def-ghi_123",
            "Authorization: [redacted-bearer-token]",
            "bearer-token",
        ),
        ("write to Jane.Doe+x@mail.example.co.uk now", "write to [redacted-email] now", "email"),
        ("card 4111-1111-1111-1111.", "card [redacted-card-number].", "card-number"),
        ("card 4242424242424242", "card [redacted-card-number]", "card-number"),
        ("call +44 20 7946 0958", "call [redacted-phone]", "phone"),
        ("call (415) 555-0100 today", "call [redacted-phone] today", "phone"),
        ("call 415.555.0100", "call [redacted-phone]", "phone"),
        ("appelez +33 1 23 45 67 89", "appelez [redacted-phone]", "phone"),
    ],
)
def test_removes(text: str, expected: str, kind: str) -> None:
    scrubber = Scrubber()
    assert scrubber.text(text) == expected
    assert dict(scrubber.counts) == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "on 2024-01-15 10:30 the order shipped",
        "order 4111111111111112 (fails the Luhn check)",
        "it costs 1299.99 dollars",
        "version 1.2.3, ticket 123456789",
        "sk-short is not a key",
        "a bearer of good news",
        "timestamp 2024-01-15T10:30:00Z",
    ],
)
def test_keeps(text: str) -> None:
    scrubber = Scrubber()
    assert scrubber.text(text) == text
    assert not scrubber.counts


def test_values_keys_and_custom_patterns_are_scrubbed() -> None:
    scrubber = Scrubber([r"cust-\d+"])
    value = {"jane@example.com": ["cust-42", {"n": 3, "ok": True}], "x": None}
    assert scrubber.value(value) == {
        "[redacted-email]": ["[redacted-custom]", {"n": 3, "ok": True}],
        "x": None,
    }
    assert dict(scrubber.counts) == {"email": 1, "custom": 1}


def test_every_occurrence_is_counted_even_when_remembered() -> None:
    scrubber = Scrubber()
    for _ in range(3):
        assert scrubber.text("mail a@b.io") == "mail [redacted-email]"
    assert dict(scrubber.counts) == {"email": 3}
