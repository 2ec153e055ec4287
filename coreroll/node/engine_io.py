"""The update engine's two exchanges with the outside: one Omaha request, one payload check.

- `post_omaha(http, url, body) -> bytes`: POST an Omaha request (queued on the client's
  `coreroll.node.httpslots` slot). No usable answer (connection refused or reset, timeout, HTTP
  5xx/408/429) raises `Unreachable` (retried with backoff by the engine); any other non-200 raises
  `RequestFailed(2000 + status)`, the code update_engine reports.
- `verify_image(data, public_key, *, size, sha256_b64) -> bytes`: size (11), base64 SHA-256 (10)
  and, with a key, the RSA signature (12/18) through `coreroll.omaha.payload.verify_payload`;
  returns the image. Without a key (update_engine skips the check when its key file is missing)
  the whole payload is returned as an opaque image. Raises `RequestFailed(code)`.
"""

from __future__ import annotations

from typing import Any

import httpx

from coreroll.node.httpslots import http_slots
from coreroll.omaha.codes import ErrorCode, http_error_code
from coreroll.omaha.payload import PayloadError, payload_hashes, verify_payload


class Unreachable(Exception):
    """The server gave no usable HTTP answer (connection refused, timeout, 5xx)."""


class RequestFailed(Exception):
    """A failure to report as 3/0 with `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)


async def post_omaha(http: httpx.AsyncClient, url: str, body: bytes) -> bytes:
    try:
        async with http_slots(http):
            reply = await http.post(url, content=body, headers={"Content-Type": "text/xml; charset=utf-8"})
    except httpx.HTTPError as exc:
        raise Unreachable(f"{url}: {type(exc).__name__}: {exc}") from exc
    if reply.status_code >= 500 or reply.status_code in (408, 429):
        raise Unreachable(f"{url} answered HTTP {reply.status_code}")
    if reply.status_code != 200:
        raise RequestFailed(
            http_error_code(reply.status_code), f"{url} answered HTTP {reply.status_code}: {reply.text[:200]}"
        )
    return reply.content


def verify_image(data: bytes, public_key: Any, *, size: int, sha256_b64: str) -> bytes:
    if public_key is None:
        got_size, got_sha256, _ = payload_hashes(data)
        if got_size != size:
            raise RequestFailed(
                ErrorCode.PayloadSizeMismatchError, f"payload is {got_size} bytes, Omaha said {size}"
            )
        if got_sha256 != sha256_b64:
            raise RequestFailed(
                ErrorCode.PayloadHashMismatchError, f"payload sha256 {got_sha256} != {sha256_b64}"
            )
        return data
    try:
        contents = verify_payload(data, public_key, expected_size=size, expected_sha256_b64=sha256_b64)
    except PayloadError as exc:
        raise RequestFailed(exc.code, f"payload refused: {exc}") from exc
    return contents.image
