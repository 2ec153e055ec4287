"""What a node agent tells etcd: its status document (`coreroll/v1/nodes/<id>/status`), written on
every change (coalesced) and every `report_interval`, and its `alive` key under a lease.

Public API:
- `StatusReporter(etcd, machine_id, document, alive_value, *, report_interval, min_write_gap,
  log_prefix="")`: `document() -> dict` builds the status, `alive_value() -> bytes` the alive
  key's value. `mark_dirty()` (a change to publish), `async run()` (until cancelled: write when
  dirty, at most one write per `min_write_gap` real seconds, and every `report_interval`; keep the
  lease of 3 x report_interval; retry with backoff while etcd is away), `async publish()`,
  `async shut_down(clean)` (clean: write the last status and revoke the lease; a crash leaves the
  lease to expire).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from coreroll.etcd.port import EtcdKV
from coreroll.node.nodestatus import alive_key, encode_status, status_key

__all__ = ["StatusReporter"]

log = logging.getLogger("coreroll.node.agent")  # the agent's own log lines, as before the split

_STOP_TIMEOUT = 5.0  # real seconds the last write / the lease revocation may take on shutdown


class StatusReporter:
    """One node's status and alive key in etcd; see the module docstring."""

    def __init__(
        self,
        etcd: EtcdKV,
        machine_id: str,
        document: Callable[[], dict[str, Any]],
        alive_value: Callable[[], bytes],
        *,
        report_interval: float,
        min_write_gap: float,
        log_prefix: str = "",
    ) -> None:
        self.etcd = etcd
        self.machine_id = machine_id
        self.document = document
        self.alive_value = alive_value
        self.report_interval = report_interval
        self.min_write_gap = min_write_gap
        self._prefix = log_prefix
        self._dirty = asyncio.Event()
        self._lease: int | None = None  # lease id
        self._etcd_ok = True

    def mark_dirty(self) -> None:
        self._dirty.set()

    def _alive_ttl(self) -> int:
        return max(2, round(3 * self.report_interval))

    async def publish(self) -> None:
        await self.etcd.put(status_key(self.machine_id), encode_status(self.document()))

    async def _keep_alive(self) -> None:
        if self._lease is not None:
            if await self.etcd.keep_lease_alive(self._lease) > 0:
                return
            self._lease = None  # expired while etcd was away: take a new one
        lease = await self.etcd.grant_lease(self._alive_ttl())
        await self.etcd.put(alive_key(self.machine_id), self.alive_value(), lease=lease)
        self._lease = lease

    async def run(self) -> None:
        """Write the status when it changed (coalesced) and every report_interval; keep the lease."""
        loop = asyncio.get_running_loop()
        interval = self.report_interval
        next_beat = loop.time()
        backoff = self.min_write_gap
        while True:
            timeout = max(0.0, next_beat - loop.time())
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races
            # with the wake-up, and the stopping agent would then wait for this task forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._dirty.wait()
            beat = loop.time() >= next_beat
            self._dirty.clear()
            try:
                if beat or self._lease is None:
                    await self._keep_alive()
                await self.publish()
                if not self._etcd_ok:
                    log.info("%setcd reachable again", self._prefix)
                self._etcd_ok, backoff = True, self.min_write_gap
                if beat:
                    next_beat = loop.time() + interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._etcd_ok:
                    log.warning("%scannot write status to etcd (%s); retrying", self._prefix, exc)
                self._etcd_ok = False
                self._dirty.set()
                backoff = min(backoff * 2, interval)
            await asyncio.sleep(backoff if not self._etcd_ok else self.min_write_gap)

    async def shut_down(self, *, clean: bool) -> None:
        """After `run()` was cancelled. Clean: the last status, then the lease revoked."""
        if clean:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_STOP_TIMEOUT):
                    await self.publish()
            lease, self._lease = self._lease, None
            if lease is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_STOP_TIMEOUT):
                        await self.etcd.revoke_lease(lease)
        self._lease = None  # after a crash the lease is simply left to expire
