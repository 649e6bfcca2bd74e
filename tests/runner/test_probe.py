"""harness probe cache-sharing against the emulator (which shares one cache, like OpenAI)."""

from __future__ import annotations

import asyncio

import pytest

from harness.cli.app import main
from harness.runner.probe import CacheSharingResult, probe_cache_sharing
from harness.runner.target import NO_KEY, Target


def test_probe_finds_the_emulators_shared_cache(emulator_url: str) -> None:
    # the shared server will do: the probe makes its prompt new with a random nonce
    target = Target("emulator", emulator_url, NO_KEY, True)
    result = asyncio.run(probe_cache_sharing(target, settle_s=0))
    assert result.shared
    # the second API sees the exact prefix: 1,024 + 128·k tokens of it are cached
    for cached in (result.chat_then_responses, result.responses_then_chat):
        assert cached >= 1024 and (cached - 1024) % 128 == 0
        assert cached <= result.input_tokens


@pytest.mark.parametrize(("a", "b", "shared"), [(0, 0, False), (1024, 0, True), (0, 1152, True)])
def test_verdict(a: int, b: int, shared: bool) -> None:
    result = CacheSharingResult(a, b, 2000)
    assert result.shared is shared
    assert result.explain().startswith("shared" if shared else "not shared")


def test_cli_probe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "cache-sharing"]) == 0
    out = capsys.readouterr().out
    assert "not OpenAI" in out and "prompt cache shared" in out
