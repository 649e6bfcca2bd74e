"""A small application for ``harness record`` tests: plain official-SDK code, no harness import.

``python record_app.py BASE_URL`` has a few conversations with the server (multi-turn with the
earlier reply sent back as the SDK returned it, a tool round trip, a ``json_schema`` answer,
streamed and not), first on ``OpenAI`` then on ``AsyncOpenAI``, plus one ``responses.create``,
and prints what it got back as JSON (ids left out: the server makes new ones per call).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from typing import Any

import openai

MODEL = "gpt-4.1-mini"
SYSTEM = "You are the help desk of a small bicycle shop. Answer briefly."
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
ORDER = {
    "type": "json_schema",
    "json_schema": {
        "name": "order",
        "schema": {
            "type": "object",
            "properties": {"item": {"type": "string"}, "quantity": {"type": "integer"}},
            "required": ["item", "quantity"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


async def _done(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _text(stream: Any) -> tuple[str, str | None]:
    parts, finish = [], None
    chunks = [c async for c in stream] if hasattr(stream, "__aiter__") else list(stream)
    for chunk in chunks:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(parts), finish


async def conversations(client: Any, who: str) -> list[Any]:
    """The application's calls; the same code for both clients."""
    create = client.chat.completions.create
    seen: list[Any] = []
    # multi-turn: the first reply goes back as the SDK object, as many apps do
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Do you repair gears, {who}?"},
    ]
    first = await _done(create(model=MODEL, messages=messages, temperature=0))
    seen.append([first.choices[0].message.content, first.choices[0].finish_reason])
    messages += [first.choices[0].message, {"role": "user", "content": "How long does it take?"}]
    stream = await _done(
        create(
            model=MODEL,
            messages=messages,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    seen.append(list(await _text(stream)))
    # a tool round trip
    ask = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Is the weather good for a ride in Lyon?"},
    ]
    called = await _done(create(model=MODEL, messages=ask, tools=[WEATHER], temperature=0))
    message = called.choices[0].message
    calls = message.tool_calls or []
    seen.append([[c.function.name, c.function.arguments] for c in calls])
    ask.append(message.model_dump(exclude_none=True))
    ask += [
        {"role": "tool", "tool_call_id": c.id, "content": '{"temp_c": 18, "sky": "clear"}'}
        for c in calls
    ]
    answer = await _done(
        create(model=MODEL, messages=ask, tools=[WEATHER], temperature=0, stream=True)
    )
    seen.append(list(await _text(answer)))
    # structured output
    order = await _done(
        create(
            model=MODEL,
            messages=[{"role": "user", "content": "Two inner tubes, please."}],
            response_format=ORDER,
            max_completion_tokens=200,
        )
    )
    seen.append(json.loads(order.choices[0].message.content or "null"))
    # the Responses API, used directly
    reply = await _done(
        client.responses.create(
            model=MODEL, input=f"Opening hours, {who}?", temperature=0, store=False
        )
    )
    seen.append(reply.output_text)
    return seen


async def main(base_url: str) -> None:
    with openai.OpenAI(base_url=base_url, api_key="sk-app-secret", max_retries=0) as client:
        sync = await conversations(client, "sync")
    async with openai.AsyncOpenAI(
        base_url=base_url, api_key="sk-app-secret", max_retries=0
    ) as aclient:
        asynchronous = await conversations(aclient, "async")
    print(json.dumps({"sync": sync, "async": asynchronous}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
