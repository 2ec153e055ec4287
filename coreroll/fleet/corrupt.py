"""The corrupted-payload fault: an httpx transport that flips one byte of the first payload.

Public API: `CorruptOnce(inner: httpx.AsyncBaseTransport)` (`fired` once it has flipped a byte);
`coreroll.fleet.sim` gives it to the nodes whose plan says `corrupt_payload`.
"""

from __future__ import annotations

import httpx

__all__ = ["CorruptOnce"]


class CorruptOnce(httpx.AsyncBaseTransport):
    """Flips one byte in the first payload download (`/packages/`) that passes through."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.fired = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.fired or "/packages/" not in request.url.path or response.status_code >= 300:
            return response
        body = bytearray(await response.aread())
        await response.aclose()
        if body:
            body[len(body) // 2] ^= 0xFF
            self.fired = True
        return httpx.Response(
            response.status_code, headers=response.headers, content=bytes(body), request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
