"""One neutral request → Chat Completions kwargs and Responses kwargs (pure functions).

Placeholder: the full translator lands with issue 3. Signatures are the contract.
"""

from __future__ import annotations

from typing import Any

from harness.request import NeutralRequest


def to_chat_kwargs(req: NeutralRequest) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create``."""
    raise NotImplementedError


def to_responses_kwargs(
    req: NeutralRequest,
    *,
    chained: bool = False,
    previous_response_id: str | None = None,
    new_from: int = 0,
) -> dict[str, Any]:
    """Keyword arguments for ``client.responses.create``.

    ``chained``: this conversation uses stored responses (``store: true`` required). With
    ``previous_response_id``, only ``req.messages[new_from:]`` are sent as ``input`` (the
    server holds the rest) while ``instructions`` are re-sent, as they are not carried over.
    """
    raise NotImplementedError
