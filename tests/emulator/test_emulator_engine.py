"""The request pipeline: a repeated body reuses its preparation without changing any reply."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from harness.emulator.engine import Emulator
from harness.emulator.profiles import EmulatorConfig, load_profile
from harness.emulator.testing import text_of_tokens

MODEL = "gpt-4.1-mini"
LONG = text_of_tokens(1500, "e1e2e3e4")  # long enough to be cached


def _replies(api: str, raws: list[bytes]) -> list[tuple[Any, ...]]:
    """(text, usage, status) of each reply of a fresh ``zero`` emulator, in order."""
    emu = Emulator(EmulatorConfig(profile=load_profile("zero"), seed=7))
    out: list[tuple[Any, ...]] = []
    for raw in raws:
        plan = emu.create(api, raw, time.perf_counter())
        body = json.loads(plan.body)
        text = (
            body["choices"][0]["message"]["content"]
            if api == "chat"
            else body["output"][0]["content"][0]["text"]
        )
        out.append((text, body["usage"], body.get("status")))
    emu.close()
    return out


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("temperature", [0, 1.0])
def test_a_repeated_body_replies_as_if_prepared_afresh(api: str, temperature: float) -> None:
    """Identical bodies share their parse, prefix hashes and reply draft; bodies that differ
    only in JSON whitespace are prepared anew. Both must get the same replies and cache
    counts, request by request (temperature samples, cache hits included)."""
    if api == "chat":
        body: dict[str, Any] = {
            "model": MODEL,
            "temperature": temperature,
            "messages": [
                {"role": "system", "content": LONG},
                {"role": "user", "content": "Describe it."},
            ],
        }
    else:
        body = {
            "model": MODEL,
            "temperature": temperature,
            "store": False,
            "instructions": LONG,
            "input": "Describe it.",
        }
    same = json.dumps(body).encode()
    respaced = [json.dumps(body, indent=n).encode() for n in range(1, 4)]
    repeated = _replies(api, [same] * 4)
    assert repeated == _replies(api, [same, *respaced])
    assert repeated[1][1] != repeated[0][1]  # the repeat hits the prompt cache
    texts = {text for text, _, _ in repeated}
    assert len(texts) == (1 if temperature == 0 else 4)
