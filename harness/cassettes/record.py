"""Recording without buffering: vcrpy's own httpx2 stub reads a whole reply before returning.

So during a recording the SDK saw every reply at once (its TTFT ≈ the wire total) and a
recorded run's SDK clock was wrong. :func:`recording_handler` replaces that stub (as a cassette
``custom_patches`` entry, applied after vcrpy's patch) while recording: the reply streams through
to the caller as it arrives and the interaction is appended to the cassette when its body has
been read, in the request's own task — so both clocks of a recorded run are true.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx2
from vcr import patch as vcr_patch
from vcr.cassette import Cassette
from vcr.request import Request

#: The unpatched method (vcrpy keeps it; fall back to the class attribute outside a cassette).
_REAL_HANDLE: Any = getattr(
    vcr_patch,
    "_Httpx2AsyncHttpTransport_handle_async_request",
    httpx2.AsyncHTTPTransport.handle_async_request,
)


class _TeeStream(httpx2.AsyncByteStream):
    """Pass a response body through as it arrives; hand the whole of it over at the end."""

    def __init__(self, inner: httpx2.AsyncByteStream, done: Callable[[bytes], None]) -> None:
        self._inner = inner
        self._done: Callable[[bytes], None] | None = done
        self._chunks: list[bytes] = []

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._chunks.append(chunk)
            yield chunk
        self._finish()

    def _finish(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(b"".join(self._chunks))

    async def aclose(self) -> None:
        # closed early (the SDK stops after an `error` event): read the rest, as vcrpy would
        # have, so the interaction is whole; a body that breaks off is not recorded (as vcrpy)
        try:
            if self._done is not None:
                async for chunk in self._inner:
                    self._chunks.append(chunk)
                self._finish()
        except httpx2.HTTPError:
            self._done = None
        finally:
            await self._inner.aclose()


def recording_handler(cassette: Cassette) -> Callable[..., Any]:
    """``AsyncHTTPTransport.handle_async_request`` while recording, without vcrpy's buffering.

    vcrpy's own stub reads the whole body before returning, so the SDK's clock saw every reply
    at once (SDK TTFT ≈ wire total). This one returns at once and records the interaction when
    the body has been read, so both clocks of a recorded run are true.
    """

    async def handle(self: httpx2.AsyncHTTPTransport, request: httpx2.Request) -> httpx2.Response:
        body = b"".join([part async for part in cast(httpx2.AsyncByteStream, request.stream)])
        request.stream = httpx2.ByteStream(body)
        vcr_request = Request(request.method, str(request.url), body, request.headers)
        response: httpx2.Response = await _REAL_HANDLE(self, request)

        def done(content: bytes) -> None:
            cassette.append(
                vcr_request,
                {
                    "status": {"code": response.status_code, "message": response.reason_phrase},
                    "headers": {k: response.headers.get_list(k) for k in response.headers},
                    "body": {"string": content},
                },
            )

        response.stream = _TeeStream(cast(httpx2.AsyncByteStream, response.stream), done)
        return response

    return handle
