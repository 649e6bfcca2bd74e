"""The ASGI app: Starlette routes over :class:`harness.emulator.engine.Emulator`.

Routes: ``POST /v1/chat/completions``, stored chat completions (``GET /v1/chat/completions``,
``GET``/``POST``/``DELETE /v1/chat/completions/{id}``, ``GET …/{id}/messages``), ``POST
/v1/responses``, ``GET``/``DELETE
/v1/responses/{id}`` (``GET`` with ``stream=true&starting_after=N`` resumes a background
stream), ``POST /v1/responses/{id}/cancel``, ``GET /v1/responses/{id}/input_items``, the
Conversations API (``/v1/conversations``, ``/{id}``, ``/{id}/items``,
``/{id}/items/{item_id}``), ``GET /v1/models`` (and ``/v1/models/{id}``); anything else is
OpenAI's 404 ``Invalid URL``. Requests without an ``Authorization`` header get OpenAI's 401. The
request path is kept lean (no middleware, bodies pre-encoded) because benchmarks compare it with a
minimal JSON endpoint on the same stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from harness.emulator.engine import Emulator, json_object
from harness.emulator.errors import ApiError
from harness.emulator.profiles import EmulatorConfig
from harness.emulator.streaming import (
    Plan,
    Receive,
    Scope,
    Send,
    TimedResponse,
    hide_stream_cut_logs,
)

#: Scope key of the request arrival time (``time.perf_counter()``), set by the server's
#: protocol when the request's first bytes are parsed, else when the app is called.
ARRIVAL_KEY = "emulator.t0"
_log = logging.getLogger("harness.emulator")
_NO_KEY = ApiError(
    401,
    "You didn't provide an API key. You need to provide your API key in an "
    "Authorization header using Bearer auth (i.e. Authorization: Bearer "
    "YOUR_KEY).",
)


class EmulatorApp:
    """The ASGI callable; ``.emulator`` exposes state (cache, store) to tests."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.emulator = Emulator(config)
        self._app = Starlette(routes=_routes(self.emulator))
        hide_stream_cut_logs()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stamp the arrival time (the zero of every server-observed time), then route."""
        if scope["type"] == "http" and ARRIVAL_KEY not in scope:
            scope[ARRIVAL_KEY] = time.perf_counter()
        await self._app(scope, receive, send)

    def close(self) -> None:
        """Flush the truth log."""
        self.emulator.close()


def create_app(config: EmulatorConfig) -> EmulatorApp:
    """An emulator ASGI app for ``config`` (serve it with uvicorn, see :mod:`.server`)."""
    return EmulatorApp(config)


def _t0(request: Request) -> float:
    t0: float = request.scope.get(ARRIVAL_KEY) or time.perf_counter()
    return t0


def _authorized(request: Request) -> bool:
    return any(name == b"authorization" for name, _ in request.scope["headers"])


def _guarded(emu: Emulator, t0: float, api: str, make: Callable[[], Plan]) -> Plan:
    """The plan ``make`` builds, or — if the emulator itself fails — an OpenAI-shaped 500.

    The traceback goes to the log; the client sees what OpenAI would send on a server error.
    """
    try:
        return make()
    except Exception:
        _log.exception("emulator failed on a %s request", api)
        return emu.error_plan(
            t0,
            ApiError(
                500,
                "The emulator (not OpenAI) failed on this request; see its log.",
                type="server_error",
            ),
            api=api,
        )


def _routes(emu: Emulator) -> list[Route]:
    truth = emu.truth

    async def chat_completions(request: Request) -> TimedResponse:
        t0 = _t0(request)
        raw = await request.body()
        if not _authorized(request):
            return TimedResponse(emu.error_plan(t0, _NO_KEY, api="chat"), truth)
        return TimedResponse(_guarded(emu, t0, "chat", lambda: emu.create("chat", raw, t0)), truth)

    async def responses(request: Request) -> TimedResponse:
        t0 = _t0(request)
        raw = await request.body()
        if not _authorized(request):
            return TimedResponse(emu.error_plan(t0, _NO_KEY, api="responses"), truth)
        return TimedResponse(
            _guarded(emu, t0, "responses", lambda: emu.create("responses", raw, t0)), truth
        )

    async def response_get(request: Request) -> TimedResponse:
        # read the (empty) body, so that a stream's disconnect watcher waits for a disconnect
        await request.body()
        return TimedResponse(
            emu.get_response(
                request.path_params["response_id"], _t0(request), request.query_params
            ),
            truth,
        )

    async def response_cancel(request: Request) -> TimedResponse:
        return TimedResponse(
            emu.cancel_response(request.path_params["response_id"], _t0(request)), truth
        )

    async def response_input_items(request: Request) -> TimedResponse:
        return TimedResponse(
            emu.input_items(request.path_params["response_id"], request.query_params, _t0(request)),
            truth,
        )

    async def response_delete(request: Request) -> TimedResponse:
        return TimedResponse(
            emu.delete_response(request.path_params["response_id"], _t0(request)), truth
        )

    async def conversations(request: Request) -> TimedResponse:
        t0 = _t0(request)
        if not _authorized(request):
            return TimedResponse(emu.error_plan(t0, _NO_KEY, api="conversations"), truth)
        raw = await request.body() if request.method == "POST" else b""
        return TimedResponse(
            emu.conversation_call(t0, _conversation_call(emu, request, raw)), truth
        )

    async def stored_completions(request: Request) -> TimedResponse:
        t0 = _t0(request)
        # truth records of these calls are not generations: apart from the chat ones
        if not _authorized(request):
            return TimedResponse(emu.error_plan(t0, _NO_KEY, api="stored_completions"), truth)
        raw = await request.body() if request.method == "POST" else b""
        call = _stored_completion_call(emu, request, raw)
        return TimedResponse(emu.object_call(t0, call, api="stored_completions"), truth)

    async def models(request: Request) -> TimedResponse:
        return TimedResponse(emu.models(_t0(request), request.path_params.get("model")), truth)

    async def not_found(request: Request) -> TimedResponse:
        err = ApiError(404, f"Invalid URL ({request.method} {request.url.path})")
        return TimedResponse(emu.error_plan(_t0(request), err, api="-"), truth)

    every = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/chat/completions", stored_completions, methods=["GET"]),
        Route(
            "/v1/chat/completions/{cid}",
            stored_completions,
            methods=["GET", "POST", "DELETE"],
        ),
        Route("/v1/chat/completions/{cid}/messages", stored_completions, methods=["GET"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/responses/{response_id}", response_get, methods=["GET"]),
        Route("/v1/responses/{response_id}", response_delete, methods=["DELETE"]),
        Route("/v1/responses/{response_id}/input_items", response_input_items, methods=["GET"]),
        Route("/v1/responses/{response_id}/cancel", response_cancel, methods=["POST"]),
        Route("/v1/conversations", conversations, methods=["POST"]),
        Route("/v1/conversations/{cid}", conversations, methods=["GET", "POST", "DELETE"]),
        Route("/v1/conversations/{cid}/items", conversations, methods=["GET", "POST"]),
        Route("/v1/conversations/{cid}/items/{iid}", conversations, methods=["GET", "DELETE"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model:path}", models, methods=["GET"]),
        Route("/{path:path}", not_found, methods=every),
    ]


def _conversation_call(emu: Emulator, request: Request, raw: bytes) -> Callable[[], dict[str, Any]]:
    """The store call a Conversations API request maps to (run inside ``conversation_call``)."""
    store = emu.conversations
    cid, iid = request.path_params.get("cid"), request.path_params.get("iid")
    method = request.method
    query = request.query_params
    include = frozenset(query.getlist("include") + query.getlist("include[]"))

    def body() -> dict[str, Any]:
        return json_object(raw) if raw.strip() else {}

    def call() -> dict[str, Any]:
        if cid is None:
            return store.create(body())
        if iid is not None:
            if method == "GET":
                return store.get_item(cid, iid, include)
            return store.delete_item(cid, iid)
        if request.url.path.endswith("/items"):
            if method == "GET":
                return store.list_items(cid, query, include)
            return store.add_items(cid, body(), include)
        if method == "GET":
            return store.require(cid).resource()
        if method == "DELETE":
            return store.delete(cid)
        return store.update(cid, body())

    return call


def _stored_completion_call(
    emu: Emulator, request: Request, raw: bytes
) -> Callable[[], dict[str, Any]]:
    """The store call a stored-completions request maps to (run inside ``object_call``)."""
    store = emu.completions
    cid = request.path_params.get("cid")
    query = request.query_params

    def call() -> dict[str, Any]:
        if cid is None:
            return store.list_page(query)
        if request.url.path.endswith("/messages"):
            return store.messages_page(cid, query)
        if request.method == "GET":
            return store.require(cid).body
        if request.method == "DELETE":
            return store.remove(cid)
        return store.update(cid, json_object(raw) if raw.strip() else {})

    return call
