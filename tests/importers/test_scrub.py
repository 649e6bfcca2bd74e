"""What the scrubber removes, and what it must leave alone (dates, amounts, ids)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from import_formats import semconv_span, span, traces

from harness.cli.app import main
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


# --------------------------------------------------------------------------- source ids

EMAIL = "jane.doe@example.com"
KEY = "sk-proj-Abc123def456GHI789jkl0"
SECRETS = (EMAIL, "jane.doe", KEY, KEY.lower(), "Abc123def456")


def _import(
    fmt: str, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[str, dict[str, Any]]:
    """Everything the import wrote or printed, and the scenario."""
    out, report = tmp_path / "s.yaml", tmp_path / "r.json"
    capsys.readouterr()
    assert main(["import", fmt, str(source), "--out", str(out), "--report", str(report)]) == 0
    texts = [out.read_text("utf-8"), report.read_text("utf-8"), capsys.readouterr().out]
    return "\n".join(texts), yaml.safe_load(texts[0])


def test_batch_custom_ids_are_scrubbed_in_report_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A custom_id names its request in the report's notes, scrubbed like the bodies."""
    ask = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Hi"}]}
    lines = [
        {"custom_id": f"{EMAIL}-1", "method": "POST", "url": "/v1/chat/completions", "body": ask},
        {
            "custom_id": f"req {KEY}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {**ask, "seed": 7},
        },
        {
            "custom_id": f"store {EMAIL}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {**ask, "store": True, "temperature": 0},
        },
    ]
    source = tmp_path / "b.jsonl"
    source.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    written, scenario = _import("batch", source, tmp_path, capsys)
    assert not [s for s in SECRETS if s in written]
    # the notes still say which request: the custom_id, redacted
    assert "b.jsonl:2: not imported: custom_id req [redacted-api-key]: seed:" in written
    assert "b.jsonl:3: changed: custom_id store [redacted-email]: store: true not kept" in written
    assert [p["id"] for p in scenario["prompts"]] == ["line-1", "line-3"]


def test_span_ids_and_names_are_scrubbed_in_prompt_ids_and_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.5,
    }
    spans = [semconv_span(i, {**body, "temperature": 0.1 * i}) for i in range(3)]
    spans[0]["spanId"] = f"{EMAIL}"
    spans[1]["spanId"] = "bob@example.org"  # scrubs to the same text as the first
    spans[2]["spanId"] = f"{KEY}"
    spans[2]["name"] = f"chat for {EMAIL}"
    spans[2]["attributes"].append(
        {"key": "gen_ai.output.type", "value": {"stringValue": "json"}}
    )  # a gap note, named by the span
    dark = span(3, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1-mini"})
    dark["name"] = f"chat {KEY}"
    source = tmp_path / "t.json"
    source.write_text(json.dumps(traces([*spans, dark])), encoding="utf-8")
    written, scenario = _import("otel", source, tmp_path, capsys)
    assert not [s for s in (*SECRETS, "bob@example.org") if s in written]
    ids = [p["id"] for p in scenario["prompts"]]
    # an e-mail's pattern takes the span- prefix with it; ids that scrub alike stay apart
    assert ids == ["redacted-email", "redacted-email-2", "span-redacted-api-key"]
    assert "not imported: span 0000000000000004 (chat [redacted-api-key]):" in written
    assert "changed: span-[redacted-api-key]: gen_ai.output.type is json" in written
