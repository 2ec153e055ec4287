"""Payload download for the update engine: resumable (HTTP Range), with progress, retries and an
optional simulated bandwidth.

update_engine downloads with libcurl, resumes an interrupted transfer with a Range request and
gives up on a URL after `MaxFailureCountPerUrl` failures (default 10), reporting
DownloadTransferError (9). This module does the same:

- the bytes go to `<dir>/payload.partial`, with `<dir>/payload.partial.json` recording which
  payload (url, size, sha256) they belong to, so a retry, or a restarted engine, continues where
  the transfer stopped; a partial file of another payload is discarded;
- a transport error or an HTTP 5xx/408/429 is retried after a delay that doubles from
  `retry_initial` up to `retry_max` (clock seconds), at most `max_failures` times, then
  `DownloadError(DownloadTransferError)`; another HTTP error status fails at once with
  `DownloadError(2000 + status)` as update_engine reports it;
- more bytes than the announced size stop the transfer with `DownloadError(PayloadSizeMismatch)`;
- `rate` (bytes per clock second) throttles through the clock, so a simulated fleet gets
  realistic download times that scale with the time factor.

Public API: `Download(client, url, directory, *, size, sha256_b64, clock, ...)` with
`async run() -> bytes` (the whole payload), `discard()`, and the counters `fetched` (bytes
transferred over the network) and `resumed_from` (offset of the last Range request, 0 if none);
`DownloadError(code, message)`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx

from coreroll.node.clock import Clock
from coreroll.omaha.codes import ErrorCode, http_error_code

log = logging.getLogger(__name__)

PARTIAL = "payload.partial"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
CHUNK = 64 * 1024


class DownloadError(Exception):
    """The payload could not be fetched; `code` is the update_engine error code to report."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message


class Download:
    """One payload transfer into `directory`; see the module docstring."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        directory: Path,
        *,
        size: int,
        sha256_b64: str,
        clock: Clock,
        on_progress: Callable[[int, int], None] | None = None,
        rate: float | None = None,
        max_failures: int = 10,
        retry_initial: float = 10.0,
        retry_max: float = 300.0,
        log_prefix: str = "",
    ) -> None:
        self.client = client
        self.url = url
        self.size = size
        self.sha256_b64 = sha256_b64
        self.clock = clock
        self.on_progress = on_progress
        self.rate = rate
        self.max_failures = max_failures
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.log_prefix = log_prefix
        self.path = directory / PARTIAL
        self.meta_path = directory / (PARTIAL + ".json")
        self.fetched = 0
        self.resumed_from = 0
        self.failures = 0

    def _meta(self) -> dict[str, object]:
        return {"url": self.url, "size": self.size, "sha256": self.sha256_b64}

    def _existing(self) -> int:
        """Bytes already on disk for this very payload; anything else is thrown away."""
        try:
            meta = json.loads(self.meta_path.read_text())
            have = self.path.stat().st_size
        except (OSError, ValueError):
            meta, have = None, 0
        if meta != self._meta() or have > self.size:
            self.discard()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.meta_path.write_text(json.dumps(self._meta()))
            self.path.write_bytes(b"")
            return 0
        return have

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    async def run(self) -> bytes:
        while True:
            have = self._existing()
            if have == self.size and self.size > 0:
                return self.path.read_bytes()
            try:
                await self._transfer(have)
            except DownloadError:
                raise
            except (httpx.TransportError, _Retryable) as exc:
                self.failures += 1
                if self.failures >= self.max_failures:
                    raise DownloadError(
                        ErrorCode.DownloadTransferError,
                        f"download of {self.url} failed {self.failures} times, last: {_describe(exc)}",
                    ) from exc
                delay = min(self.retry_initial * 2 ** (self.failures - 1), self.retry_max)
                log.info(
                    "%sdownload interrupted at %d/%d bytes (%s); retrying in %.0fs",
                    self.log_prefix,
                    self._on_disk(),
                    self.size,
                    _describe(exc),
                    delay,
                )
                await self.clock.sleep(delay)

    def _on_disk(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    async def _transfer(self, have: int) -> None:
        # No http_slots here: a throttled transfer holds its connection for its simulated
        # duration, and a fleet's downloads must overlap; the pool's own limit applies.
        headers = {"Range": f"bytes={have}-"} if have else {}
        async with self.client.stream("GET", self.url, headers=headers) as reply:
            if reply.status_code in RETRYABLE_STATUS:
                raise _Retryable(f"HTTP {reply.status_code}")
            if reply.status_code == 416 and have:
                # The server says we already have everything: let the verifier judge the bytes.
                self.size = have
                return
            if reply.status_code not in (200, 206):
                raise DownloadError(
                    http_error_code(reply.status_code), f"GET {self.url} answered HTTP {reply.status_code}"
                )
            mode = "ab"
            if have and reply.status_code == 200:
                mode, have = "wb", 0  # the server ignored the Range: start over
            elif have:
                self.resumed_from = have
            got = have
            # Local appends of 64 KiB chunks: cheaper inline than a thread hop per chunk.
            with open(self.path, mode) as out:  # noqa: ASYNC230
                async for chunk in reply.aiter_bytes(CHUNK):
                    got += len(chunk)
                    self.fetched += len(chunk)
                    if got > self.size:
                        raise DownloadError(
                            ErrorCode.PayloadSizeMismatchError,
                            f"{self.url} sent more than the {self.size} bytes the update offer announced",
                        )
                    out.write(chunk)
                    out.flush()
                    if self.on_progress is not None:
                        self.on_progress(got, self.size)
                    if self.rate:
                        await self.clock.sleep(len(chunk) / self.rate)
        if got < self.size:
            if reply.headers.get("content-length") is not None:
                # A complete response that is shorter than announced: the payload's size is wrong.
                declared = int(reply.headers["content-length"]) + (have if reply.status_code == 206 else 0)
                if declared == got:
                    raise DownloadError(
                        ErrorCode.PayloadSizeMismatchError,
                        f"{self.url} holds {got} bytes, the update offer announced {self.size}",
                    )
            raise _Retryable(f"connection closed after {got} of {self.size} bytes")


class _Retryable(Exception):
    pass


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
