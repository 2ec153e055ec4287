"""The update engine: Flatcar's update_engine as an asyncio object (its states, timings, Omaha
requests and error codes, as upstream's flatcar/update_engine has them).

What it does, in update_engine's order:
- Marks the booted partition good (`flatcar-setgoodroot`: `disk.mark_good()`) `mark_good_delay`
  clock seconds after it starts (UpdateBootFlags, 45 s), or just before the first update attempt,
  whichever comes first.
- Checks for updates on a schedule: the first `first_check` (7 min, fuzz 5 min) after start, then
  every `interval` (45 min +- 5) or the server's `PollInterval`; and on demand (`request_check()`,
  installsource "ondemandupdate"). A check that gets no answer (server down, HTTP 5xx) is retried
  after a delay doubling from `retry_initial` up to `retry_max`.
- Every check carries ping + updatecheck + an event: 3/2 with `previousversion` = the version it
  updated away from on the first check after rebooting into the update, "" otherwise; 3/0
  errorcode 44 (RollbackError) instead when it is running that very version again (the new one
  did not boot and GRUB fell back); "0.0.0.0" while the pref was never written (fresh install).
  The previous-version pref is reset once a check is answered.
- On an offer: UPDATE_AVAILABLE, event 13/1, DOWNLOADING (resumable, `download.Download`),
  VERIFYING (size 11, base64 SHA-256 10, RSA signature 12/18 via
  `coreroll.omaha.payload.verify_payload`), event 14/1, FINALIZING (write the inactive partition,
  postinstall: -S0 -T1 + prioritize), event 3/1, UPDATED_NEED_REBOOT. From then on only
  ping-only requests are sent, until the node reboots.
- Any failure: REPORTING_ERROR_EVENT, event 3/0 with update_engine's error code, back to IDLE;
  the partitions are untouched until the payload verified. An event the server could not be
  told about is sent again with the next request.

The engine knows nothing about etcd: every change of its status goes to `on_change(snapshot)`
(called synchronously; the agent coalesces) and to `<state>/update_engine.json`
(`coreroll.node.engine_state`), which `coreroll node status` prints. A check that only moves
`last_checked_time` rewrites that file at most every 30 real seconds (and when the engine stops).
Without a public key the signature is not checked (update_engine does the same when its key file
is missing, with a warning) and the payload is written as an opaque image.
Omaha requests of engines sharing an httpx client queue on `coreroll.node.httpslots`.
The value types live in `coreroll.node.engine_types` (re-exported here), the HTTP request and the
payload check in `coreroll.node.engine_io`, the status bookkeeping (state file, `on_change`,
write throttling) in `coreroll.node.engine_report`.

Public API:
- `EngineTimings` (clock seconds: first_check, first_check_fuzz, interval, interval_fuzz,
  retry_initial, retry_max, mark_good_delay, download_retry_initial, download_retry_max,
  download_max_failures).
- `NodeIdentity(machine_id, boot_id, oem="", oemversion="", board="amd64-usr")`.
- `EngineSnapshot(status, progress, new_version, new_size, last_checked_time, last_error)`,
  `CheckOutcome` (NO_UPDATE, UPDATED, PINGED, FAILED, UNREACHABLE, BUSY), `fuzz(rng, value, spread)`.
- `UpdateEngine(disk, state_dir, server_url, track, identity, clock, http, public_key=None,
  timings=EngineTimings(), rng=None, download_rate=None, on_change=None)`:
  `async run()` (until cancelled), `request_check() -> bool`, `async check_once(installsource)`
  (one attempt, returns its `CheckOutcome`), `snapshot`, `state` (the persisted `EngineState`),
  `last_download` (the last `Download`, for its counters), `attempts` (the last 32
  `(clock time, CheckOutcome)` pairs), `mark_good()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from coreroll.node.clock import Clock
from coreroll.node.download import Download, DownloadError
from coreroll.node.engine_io import RequestFailed, Unreachable, post_omaha, verify_image
from coreroll.node.engine_report import StatusRecorder
from coreroll.node.engine_state import STATE_FILE, EngineState
from coreroll.node.engine_types import CheckOutcome, EngineSnapshot, EngineTimings, NodeIdentity, fuzz
from coreroll.node.partitions import Disk
from coreroll.omaha.codes import (
    UPDATE_STATUS_CHECKING_FOR_UPDATE,
    UPDATE_STATUS_DOWNLOADING,
    UPDATE_STATUS_FINALIZING,
    UPDATE_STATUS_IDLE,
    UPDATE_STATUS_REPORTING_ERROR_EVENT,
    UPDATE_STATUS_UPDATE_AVAILABLE,
    UPDATE_STATUS_UPDATED_NEED_REBOOT,
    UPDATE_STATUS_VERIFYING,
    ErrorCode,
    EventResult,
    EventType,
    error_code_name,
)
from coreroll.omaha.protocol import OmahaEvent, OmahaParseError, build_request, parse_response

__all__ = [
    "INSTALLSOURCE_ONDEMAND",
    "INSTALLSOURCE_SCHEDULER",
    "NEVER_WRITTEN_VERSION",
    "CheckOutcome",
    "EngineSnapshot",
    "EngineTimings",
    "NodeIdentity",
    "UpdateEngine",
    "fuzz",
]

log = logging.getLogger(__name__)

NEVER_WRITTEN_VERSION = "0.0.0.0"
INSTALLSOURCE_SCHEDULER = "scheduler"
INSTALLSOURCE_ONDEMAND = "ondemandupdate"
# Statuses in which a check may start (update_engine ignores AttemptUpdate otherwise).
_IDLE_STATES = {str(UPDATE_STATUS_IDLE)}
_MAX_PENDING_EVENTS = 8


class UpdateEngine:
    """One node's update_engine; see the module docstring."""

    def __init__(
        self,
        *,
        disk: Disk,
        state_dir: Path,
        server_url: str,
        track: str,
        identity: NodeIdentity,
        clock: Clock,
        http: httpx.AsyncClient,
        public_key: Any = None,
        timings: EngineTimings | None = None,
        rng: random.Random | None = None,
        download_rate: float | None = None,
        on_change: Callable[[EngineSnapshot], None] | None = None,
    ) -> None:
        self.disk = disk
        self.state_dir = Path(state_dir)
        self.server_url = server_url
        self.track = track
        self.identity = identity
        self.clock = clock
        self.http = http
        self.public_key = public_key
        self.timings = timings or EngineTimings()
        self.rng = rng or random.Random()
        self.download_rate = download_rate
        self.last_download: Download | None = None
        self._pending_events: list[OmahaEvent] = []
        self._wake = asyncio.Event()
        self._wake_source = INSTALLSOURCE_SCHEDULER
        self._busy = asyncio.Lock()
        self._failures = 0  # consecutive unanswered checks, for the backoff
        self.attempts: deque[tuple[float, CheckOutcome]] = deque(maxlen=32)
        self._marked_good = False
        self._poll_interval: int | None = None
        self._log_prefix = f"[{identity.machine_id[:8]}] "
        self._recorder = StatusRecorder(
            self.state_dir / STATE_FILE,
            identity.boot_id,
            disk.active.version or "",
            clock,
            on_change,
            self._log_prefix,
        )

    # -- status (kept by engine_report.StatusRecorder) ------------------------------------

    @property
    def state(self) -> EngineState:
        return self._recorder.state

    @property
    def state_path(self) -> Path:
        return self._recorder.state_path

    @property
    def status(self) -> str:
        return self._recorder.status

    @property
    def snapshot(self) -> EngineSnapshot:
        return self._recorder.snapshot

    def _set(self, status: str | None = None, **changes: Any) -> None:
        self._recorder.set(status, **changes)

    # -- schedule ----------------------------------------------------------------------------

    def request_check(self) -> bool:
        """Ask for a check now (update_engine_client -check_for_update). False when busy or
        when an update already waits for the reboot; the request is then ignored."""
        if self._busy.locked() or self.status not in _IDLE_STATES:
            log.info("%scheck requested while %s: ignored", self._log_prefix, self.status)
            return False
        self._wake_source = INSTALLSOURCE_ONDEMAND
        self._wake.set()
        return True

    async def run(self) -> None:
        """Mark the boot good after the delay and check on schedule, until cancelled."""
        mark = asyncio.create_task(self._mark_good_later())
        try:
            delay = fuzz(self.rng, self.timings.first_check, self.timings.first_check_fuzz)
            while True:
                source = await self._wait(delay)
                outcome = await self.check_once(source)
                delay = self._next_delay(outcome)
        finally:
            self._recorder.save(force=True)  # the last check time a throttled write may have skipped
            mark.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await mark

    async def _wait(self, delay: float) -> str:
        """Sleep `delay` clock seconds, or less if a check is requested; returns the installsource."""
        if not self._wake.is_set():
            sleeper = asyncio.ensure_future(self.clock.sleep(delay))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    task.cancel()
        source = self._wake_source if self._wake.is_set() else INSTALLSOURCE_SCHEDULER
        self._wake.clear()
        self._wake_source = INSTALLSOURCE_SCHEDULER
        return source

    def _next_delay(self, outcome: CheckOutcome) -> float:
        t = self.timings
        if outcome is CheckOutcome.UNREACHABLE:
            base = min(t.retry_initial * 2 ** (self._failures - 1), t.retry_max)
            return fuzz(self.rng, base, base * 0.2)  # jitter so a fleet does not retry in step
        if self._poll_interval:
            return float(self._poll_interval)
        return fuzz(self.rng, t.interval, t.interval_fuzz)

    async def _mark_good_later(self) -> None:
        await self.clock.sleep(self.timings.mark_good_delay)
        self.mark_good()

    def mark_good(self) -> None:
        """flatcar-setgoodroot, once per engine (UpdateBootFlags)."""
        if self._marked_good:
            return
        self._marked_good = True
        active = self.disk.active
        if not active.successful or active.tries:
            self.disk.mark_good()
            log.info("%smarked %s (%s) good", self._log_prefix, active.label, active.version)
            self._recorder.notify()  # the partition table changed: the agent reports it

    # -- one attempt -------------------------------------------------------------------------

    async def check_once(self, installsource: str = INSTALLSOURCE_SCHEDULER) -> CheckOutcome:
        """One update attempt (or a ping while an update waits for the reboot)."""
        if self._busy.locked():
            return CheckOutcome.BUSY
        async with self._busy:
            outcome = await self._check_locked(installsource)
        self.attempts.append((self.clock.now(), outcome))
        return outcome

    async def _check_locked(self, installsource: str) -> CheckOutcome:
        if self.status == str(UPDATE_STATUS_UPDATED_NEED_REBOOT):
            return await self._ping()
        self.mark_good()
        try:
            return await self._attempt(installsource)
        except Unreachable as exc:
            self._failures += 1
            log.warning(
                "%supdate check failed (%s); attempt %d, retrying with backoff",
                self._log_prefix,
                exc,
                self._failures,
            )
            self._set(UPDATE_STATUS_IDLE, progress=0.0, new_version="", new_size=0)
            return CheckOutcome.UNREACHABLE
        except RequestFailed as exc:
            await self._report_error(exc.code, str(exc))
            return CheckOutcome.FAILED

    def _boot_event(self) -> OmahaEvent:
        previous = self.state.previous_version
        running = self.disk.active.version or ""
        if previous and previous == running:
            return OmahaEvent(EventType.UpdateComplete, EventResult.Error, int(ErrorCode.RollbackError), None)
        # A pref never written (fresh install) goes out as "0.0.0.0", a reset one as "".
        return OmahaEvent(
            EventType.UpdateComplete,
            EventResult.SuccessReboot,
            None,
            NEVER_WRITTEN_VERSION if previous is None else previous,
        )

    def _request(
        self, *, installsource: str, ping: bool, updatecheck: bool, events: list[OmahaEvent]
    ) -> bytes:
        ident = self.identity
        return build_request(
            version=self.disk.active.version or "",
            track=self.track,
            machineid=ident.machine_id,
            bootid=ident.boot_id,
            oem=ident.oem,
            oemversion=ident.oemversion,
            alephversion=self.state.aleph_version,
            board=ident.board,
            installsource=installsource,
            ping=ping,
            updatecheck=updatecheck,
            events=events,
            coreroll_agent=True,  # synthetic payloads are offered only to requests saying so
        )

    async def _post(self, body: bytes) -> bytes:
        return await post_omaha(self.http, self.server_url, body)

    async def _attempt(self, installsource: str) -> CheckOutcome:
        self._set(UPDATE_STATUS_CHECKING_FOR_UPDATE, progress=0.0)
        events = [*self._pending_events, self._boot_event()]
        body = self._request(installsource=installsource, ping=True, updatecheck=True, events=events)
        answer = await self._post(body)
        self._failures = 0
        self._pending_events.clear()
        self.state.previous_version = ""  # update_engine resets the pref once a check is answered
        self.state.last_checked_time = int(self.clock.now())
        try:
            info = parse_response(answer)
        except OmahaParseError as exc:
            raise RequestFailed(
                exc.code or ErrorCode.OmahaRequestXMLParseError, f"bad response: {exc}"
            ) from exc
        self._poll_interval = info.poll_interval
        if info.status == "noupdate" or info.offer is None:
            self._set(UPDATE_STATUS_IDLE, progress=0.0, new_version="", new_size=0)
            log.debug("%sno update", self._log_prefix)
            return CheckOutcome.NO_UPDATE
        offer = info.offer
        log.info("%supdate available: %s (%d bytes)", self._log_prefix, offer.version, offer.size)
        self._set(UPDATE_STATUS_UPDATE_AVAILABLE, new_version=offer.version, new_size=offer.size)
        await self._event(EventType.UpdateDownloadStarted, EventResult.Success)
        self._set(UPDATE_STATUS_DOWNLOADING, progress=0.0)
        self._recorder.restart_progress()
        download = Download(
            self.http,
            offer.payload_url,
            self.state_dir,
            size=offer.size,
            sha256_b64=offer.sha256_b64,
            clock=self.clock,
            on_progress=self._recorder.progress,
            rate=self.download_rate,
            max_failures=self.timings.download_max_failures,
            retry_initial=self.timings.download_retry_initial,
            retry_max=self.timings.download_retry_max,
            log_prefix=self._log_prefix,
        )
        self.last_download = download
        try:
            data = await download.run()
        except DownloadError as exc:
            if exc.code != ErrorCode.DownloadTransferError:
                download.discard()
            raise RequestFailed(exc.code, exc.message) from exc
        self._set(UPDATE_STATUS_VERIFYING, progress=1.0)
        try:
            image = self._verify(data, offer.size, offer.sha256_b64)
        finally:
            download.discard()  # verified or refused, these bytes are done with
        await self._event(EventType.UpdateDownloadFinished, EventResult.Success)
        self._set(UPDATE_STATUS_FINALIZING)
        target = self.disk.inactive
        running = self.disk.active.version or ""
        try:
            self.disk.write_image(target.label, image, offer.version)
            self.disk.postinstall(target.label)
        except OSError as exc:
            raise RequestFailed(ErrorCode.FilesystemCopierError, f"writing {target.label}: {exc}") from exc
        self.state.previous_version = running
        log.info("%swrote %s to %s, postinstall done", self._log_prefix, offer.version, target.label)
        await self._event(EventType.UpdateComplete, EventResult.Success)
        self._set(UPDATE_STATUS_UPDATED_NEED_REBOOT, last_error=None, last_error_name=None)
        return CheckOutcome.UPDATED

    def _verify(self, data: bytes, size: int, sha256_b64: str) -> bytes:
        if self.public_key is None:
            log.warning("%sno public key configured: payload signature not checked", self._log_prefix)
        return verify_image(data, self.public_key, size=size, sha256_b64=sha256_b64)

    async def _ping(self) -> CheckOutcome:
        body = self._request(installsource=INSTALLSOURCE_SCHEDULER, ping=True, updatecheck=False, events=[])
        try:
            await self._post(body)
        except (Unreachable, RequestFailed) as exc:
            log.info("%sping failed: %s", self._log_prefix, exc)
            return CheckOutcome.UNREACHABLE
        self.state.last_checked_time = int(self.clock.now())
        self._recorder.save()
        return CheckOutcome.PINGED

    async def _event(self, event_type: int, result: int, errorcode: int | None = None) -> None:
        """An event-only request; if the server cannot be told now, it goes with the next request."""
        event = OmahaEvent(int(event_type), int(result), errorcode, None)
        body = self._request(
            installsource=INSTALLSOURCE_SCHEDULER, ping=False, updatecheck=False, events=[event]
        )
        try:
            await self._post(body)
        except Unreachable as exc:
            log.warning("%sevent %d/%d not delivered (%s); queued", self._log_prefix, event_type, result, exc)
            # Bounded: a server that stays away for days must not grow the next request forever.
            self._pending_events = [*self._pending_events, event][-_MAX_PENDING_EVENTS:]
        except RequestFailed as exc:
            log.warning("%sevent %d/%d refused by the server: %s", self._log_prefix, event_type, result, exc)

    async def _report_error(self, code: int, message: str) -> None:
        name = error_code_name(code)
        log.warning("%supdate failed: %s (%d %s)", self._log_prefix, message, code, name)
        self._set(UPDATE_STATUS_REPORTING_ERROR_EVENT, last_error=code, last_error_name=name)
        await self._event(EventType.UpdateComplete, EventResult.Error, code)
        self._set(UPDATE_STATUS_IDLE, progress=0.0, new_version="", new_size=0)
