"""A scenario's first requests as OpenAI Batch API input (``harness export batch``).

The requests are the plan's (:func:`harness.runner.plan.build_plan`): the first request of each
prompt, translated by the run's own translators, with ``stream: false`` (the Batch API does not
stream) and no cache nonce (a batch is the traffic, not a measurement). Every body is checked
against the OpenAPI spec before anything is written. A prompt's ``weight`` is written as that
many lines (custom ids ``…#2``, ``…#3``), so the batch has the traffic's mix, unless ``once``.
Later turns are not exported: they depend on the replies.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError, TranslationError
from harness.scenario.models import Scenario
from harness.translate.request import NeutralRequest

__all__ = ["BATCH_LIMIT", "URLS", "batch_lines", "export_batch"]

Api = Literal["chat", "responses"]
URLS: dict[Api, str] = {"chat": "/v1/chat/completions", "responses": "/v1/responses"}
#: requests one Batch API input file may hold
BATCH_LIMIT = 50_000


def _first_requests(
    scenario: Scenario, api: Api
) -> Iterator[tuple[str, int, NeutralRequest, bool]]:
    """(prompt id, weight, first request, has later turns) per prompt, in scenario order."""
    from harness.runner.plan import PlannedConversation, build_plan

    plain = scenario.model_copy(update={"cache_isolation": "none", "warmup": 0})
    plan = build_plan(plain, repeats=1)
    weights = {p.id: p.weight for p in scenario.prompts}
    best: dict[str, PlannedConversation] = {}

    def rank(conv: PlannedConversation) -> tuple[bool, bool]:
        # an arm of this API first; never a state-keeping or storing arm if another exists
        return (conv.state != "history" or bool(conv.base.params.store), conv.api != api)

    for conv in plan.conversations:
        known = best.get(conv.prompt_id)
        if known is None or rank(conv) < rank(known):
            best[conv.prompt_id] = conv
    for prompt in scenario.prompts:
        conv = best[prompt.id]
        request, _ = conv.request_for(0, ())
        if conv.base.params.store and scenario.params_for(prompt).get("store") is None:
            # only the chained arm and +store variants store by default; a batch request
            # keeps no state
            request = request.model_copy(
                update={"params": request.params.model_copy(update={"store": False})}
            )
        params = request.params.model_copy(update={"stream": False})
        yield (
            prompt.id,
            weights[prompt.id],
            request.model_copy(update={"params": params}),
            len(conv.steps) > 1,
        )


def _body(api: Api, request: NeutralRequest) -> dict[str, Any]:
    from harness.translate.convert import to_chat_kwargs, to_responses_kwargs
    from harness.translate.spec import request_problems

    body = to_chat_kwargs(request) if api == "chat" else to_responses_kwargs(request)
    problems = request_problems(URLS[api].removeprefix("/v1"), body)
    if problems:
        raise TranslationError(f"{api}: {problems[0]}")
    return body


def batch_lines(
    scenario: Scenario, api: Api, *, once: bool = False, where: str = ""
) -> tuple[list[dict[str, Any]], list[str]]:
    """The Batch API input lines of ``scenario`` for ``api``, and notes for the terminal."""
    lines: list[dict[str, Any]] = []
    later: list[str] = []
    for prompt_id, weight, request, more in _first_requests(scenario, api):
        try:
            body = _body(api, request)
        except TranslationError as exc:
            raise HarnessError(
                f"{where or scenario.name}: prompt {prompt_id}: {exc} — fix the "
                "prompt or export the other API"
            ) from None
        if more:
            later.append(prompt_id)
        base = f"{scenario.name}/{prompt_id}/{api}"
        for k in range(1 if once else weight):
            custom_id = base if k == 0 else f"{base}#{k + 1}"
            lines.append({"custom_id": custom_id, "method": "POST", "url": URLS[api], "body": body})
    notes = []
    if later:
        notes.append(
            f"{len(later)} prompts have later turns, not exported (they depend on the replies): "
            + ", ".join(later[:5])
            + (" …" if len(later) > 5 else "")
        )
    if len(lines) > BATCH_LIMIT:
        raise HarnessError(
            f"{scenario.name}: {len(lines)} requests with weights, more than a Batch API file "
            f"holds ({BATCH_LIMIT:,}) — pass --once to write each prompt once"
        )
    return lines, notes


def _write(path: Path, lines: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_batch(
    scenario: Scenario, apis: tuple[Api, ...], out: Path, *, once: bool = False, where: str = ""
) -> tuple[dict[Path, int], list[str]]:
    """Write the batch file(s): ``out`` for one API; for both, ``out`` with ``.chat`` and
    ``.responses`` before its suffix (a Batch API file holds one endpoint's requests). All
    bodies are built and checked before any file is written. Returns lines per file, notes."""
    built: dict[Path, list[dict[str, Any]]] = {}
    notes: list[str] = []
    for api in apis:
        path = out if len(apis) == 1 else out.with_name(f"{out.stem}.{api}{out.suffix}")
        built[path], api_notes = batch_lines(scenario, api, once=once, where=where)
        notes += [n for n in api_notes if n not in notes]
    for path, lines in built.items():
        _write(path, lines)
    return {path: len(lines) for path, lines in built.items()}, notes
