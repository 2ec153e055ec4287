"""Following an upstream update server (``coreroll server --sync [URL]``), as Nebraska's syncer does.

``Syncer(settings, storage, catalog, publisher, stopping)``; ``await syncer.run()`` until
``stopping`` is set: a pass at start, then one every ``settings.sync_interval`` seconds (+-10 %
jitter); after a pass with a failure the next comes sooner, with backoff (30 s doubling up to the
interval, jittered). ``wake()`` starts a pass now; ``await sync_now(wait_seconds)`` also waits for it to
end (``POST /api/v1/sync``). ``status()`` is what the report says of the running syncer.

A pass asks upstream, for each channel (``settings.sync_channels``) and board
(``settings.sync_boards``), with ``coreroll.omaha.upstream.sync_request`` saying it runs the last
version stored for that pair (else the channel's, else ``0.0.0``), so upstream answers with every
floor above it and its target (``coreroll.server.sync_plan``). Each release is recorded for the
board unless the same bytes are already here:

- hosted (``settings.host_packages``): each file is downloaded (progress in the log) through
  ``Publisher.publish_upload``: streamed to a temporary file, checked whole as a node would read it
  (signatures with ``--payload-key``), compared with upstream's size, SHA-1 and SHA-256, renamed
  into place only when whole; then served from ``/packages/`` like an upload;
- URL mode (default): recorded with its upstream URL (``Publisher.publish_url``: scheme, size,
  hash formats), after a ``HEAD`` that must not say the file is missing or of another size.

A floor is marked (``Catalog.set_floor``, with upstream's reason) and recorded as having been on
the channel, so nodes below it get it first. Then the channel follows upstream: it is pointed at
upstream's target when that is newer than what it offers, every file of the target is here for the
board, no release of the answer was refused (a floor must never be skipped) and the channel is not
pinned (``coreroll.server.pins``). Activities: ``ReleaseSynced`` for each release and board
recorded, ``SyncFailed`` when a channel/board fails or a release is refused (once per distinct
failure: a failure that repeats is only logged), and the ``ChannelUpdated`` of the move.

A release refused at the door (``CatalogError``: bad metadata, bytes that do not match, a payload no
node could apply) is recorded in ``sync_refusals`` with the reason and never offered. State per
channel/board is kept in ``sync_state`` (``coreroll.server.sync_state``), so a restart resumes
where the last pass ended; files already stored are never fetched again. With several servers on
one PostgreSQL, a pass runs only on the server holding a session advisory lock; the others skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from sqlalchemy import insert, text

from coreroll.omaha.messages import OmahaParseError
from coreroll.omaha.upstream import MAX_ANSWER, UpstreamAnswer, parse_sync_answer, sync_request
from coreroll.omaha.xmlsafe import short
from coreroll.server import schema
from coreroll.server.catalog import EXTRA, PAYLOAD, Catalog, CatalogError
from coreroll.server.records import iso
from coreroll.server.releases import Publisher
from coreroll.server.settings import ServerSettings
from coreroll.server.storage import Storage, Tx
from coreroll.server.sync_plan import PlannedRelease, plan_answer
from coreroll.server.sync_state import SyncState, clear_refusal, load_states, record_refusal, save_state
from coreroll.server.url_payloads import FileMetadata
from coreroll.server.versions import is_newer
from coreroll.watch.backoff import Backoff

log = logging.getLogger("coreroll.server.sync")
FIRST_RETRY = 30.0  # seconds before the first retry after a failed pass
PROGRESS_SECONDS = 5.0
_LEADER_LOCK = 7_263_002  # another arbitrary constant (storage.py uses 7_263_001)
_TIMEOUT = httpx.Timeout(60.0, connect=15.0)


class SyncFailure(Exception):
    """Upstream could not be asked or a download broke: tried again later (not a refusal)."""


class Syncer:
    def __init__(
        self,
        settings: ServerSettings,
        storage: Storage,
        catalog: Catalog,
        publisher: Publisher,
        stopping: asyncio.Event,
    ) -> None:
        assert settings.sync_url is not None
        self.settings = settings
        self.upstream = settings.sync_url
        self.storage = storage
        self.catalog = catalog
        self.publisher = publisher
        self.stopping = stopping
        self.clock: Callable[[], float] = settings.clock
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self.passes_started = 0
        self.passes_finished = 0
        self.running = False
        self.last_pass_at: float | None = None
        self.next_pass_at: float | None = None
        self._backoff = Backoff(FIRST_RETRY, settings.sync_interval)
        # As Nebraska's syncer: a braced random id per channel and board and process, which upstream
        # Nebraska leaves out of its statistics (its "fake instance" pattern).
        self._ids = {
            (c, b): (f"{{{uuid.uuid4()}}}", f"{{{uuid.uuid4()}}}")
            for c in settings.sync_channels
            for b in settings.sync_boards
        }

    # ---- the loop ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "mode": "hosted" if self.settings.host_packages else "url",
            "interval_seconds": self.settings.sync_interval,
            "boards": list(self.settings.sync_boards),
            "running": self.running,
            "passes": self.passes_finished,
            "last_pass_at": iso(self.last_pass_at),
            "next_pass_at": iso(self.next_pass_at),
        }

    def wake(self) -> None:
        self._wake.set()

    async def sync_now(self, wait_seconds: float) -> bool:
        """Start a pass (after the one running, if any) and wait for it; False on timeout."""
        wanted = self.passes_started + 1
        self.wake()
        async with self._progress:
            try:
                await asyncio.wait_for(
                    self._progress.wait_for(lambda: self.passes_finished >= wanted), wait_seconds
                )
            except TimeoutError:
                return False
        return True

    async def run(self) -> None:
        log.info("following upstream %s (%s mode, every %g s): channels %s, boards %s", self.upstream,
                 self.status()["mode"], self.settings.sync_interval, ",".join(self.settings.sync_channels),
                 ",".join(self.settings.sync_boards))  # fmt: skip
        while not self.stopping.is_set():
            self._wake.clear()
            try:
                ok = await self.sync_once()
            except Exception:  # a bug or the database: logged, retried with backoff
                log.exception("sync pass failed")
                ok = False
            delay = self.settings.sync_interval * random.uniform(0.9, 1.1) if ok else self._backoff.next()
            if ok:
                self._backoff.reset()
            self.next_pass_at = self.clock() + delay
            waits = [asyncio.ensure_future(e.wait()) for e in (self._wake, self.stopping)]
            try:
                await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()

    async def sync_once(self) -> bool:
        """One pass over every channel and board; True when nothing failed."""
        self.passes_started += 1
        self.running = True
        try:
            async with self._leader() as leading:
                if not leading:
                    log.info("sync pass skipped: another server on this database is syncing")
                    return True
                return await self._pass()
        finally:
            self.running = False
            self.last_pass_at = self.clock()
            async with self._progress:
                self.passes_finished += 1
                self._progress.notify_all()

    @contextlib.asynccontextmanager
    async def _leader(self) -> AsyncIterator[bool]:
        if self.storage.is_sqlite:  # one server per SQLite database
            yield True
            return
        async with self.storage.engine.connect() as conn:
            got = bool(await conn.scalar(text(f"SELECT pg_try_advisory_lock({_LEADER_LOCK})")))
            await conn.commit()
            try:
                yield got
            finally:
                if got:
                    await conn.scalar(text(f"SELECT pg_advisory_unlock({_LEADER_LOCK})"))
                    await conn.commit()

    async def _pass(self) -> bool:
        await self.catalog.maybe_refresh()
        states = await load_states(self.storage)
        ok = True
        async with httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=True) as http:
            for channel in self.settings.sync_channels:
                for board in self.settings.sync_boards:
                    if self.stopping.is_set():
                        return ok
                    state = states.get((channel, board)) or SyncState(channel, board)
                    ok = await self._sync_one(http, state) and ok
        return ok

    # ---- one channel and board ---------------------------------------------------------------
    def _running_version(self, state: SyncState) -> str:
        if state.synced_version:
            return state.synced_version
        current = self.catalog.channel_version(state.channel)
        if current and self.catalog.payload(current, state.board) is not None:
            return current
        return "0.0.0"

    async def _ask(self, http: httpx.AsyncClient, state: SyncState) -> UpstreamAnswer:
        machine, boot = self._ids[(state.channel, state.board)]
        body = sync_request(state.channel, state.board, self._running_version(state), machine, boot)
        try:
            async with http.stream("POST", self.upstream, content=body,
                                   headers={"Content-Type": "text/xml"}) as reply:  # fmt: skip
                answer = bytearray()
                async for chunk in reply.aiter_bytes():
                    answer += chunk
                    if len(answer) > MAX_ANSWER:
                        raise SyncFailure(f"upstream's answer is over {MAX_ANSWER} bytes")
        except httpx.HTTPError as exc:
            raise SyncFailure(
                f"cannot ask upstream {self.upstream}: {short(str(exc) or type(exc).__name__)}"
            ) from None
        if reply.status_code != 200:
            raise SyncFailure(f"upstream {self.upstream} answered HTTP {reply.status_code}")
        try:
            return parse_sync_answer(bytes(answer))
        except OmahaParseError as exc:
            raise SyncFailure(f"upstream's answer is not an Omaha response: {exc.reason}") from None

    async def _sync_one(self, http: httpx.AsyncClient, state: SyncState) -> bool:
        where = f"{state.channel} {state.board}"
        state.last_attempt_at = self.clock()
        try:
            answer = await self._ask(http, state)
            if answer.app_status != "ok":
                raise SyncFailure(f"upstream has no {where} (app status {short(answer.app_status, 60)!r})")
            if answer.status not in ("ok", "noupdate"):
                raise SyncFailure(f"upstream answered updatecheck status {short(answer.status, 60)!r}")
            problems = await self._record(http, state, answer) if answer.status == "ok" else []
        except SyncFailure as exc:
            problems = [str(exc)]
        if not problems:
            await self._follow(state)
        await self._finish(state, problems)
        return not problems

    async def _record(self, http: httpx.AsyncClient, state: SyncState, answer: UpstreamAnswer) -> list[str]:
        """Store the answer's releases for the board; returns what went wrong (nothing: all there)."""
        plan = plan_answer(answer)
        problems: list[str] = []
        for refused in plan.refused:
            problems.append(await self._refuse(state, refused.version, refused.reason))
        for release in plan.releases:
            try:
                created = await self._store(http, state.board, release)
            except CatalogError as exc:
                problems.append(await self._refuse(state, release.version, exc.message))
                continue
            await self._recorded(state, release, created)
        if not problems and plan.target is not None:
            state.upstream_version = state.synced_version = plan.target
        return problems

    async def _store(
        self, http: httpx.AsyncClient, board: str, release: PlannedRelease
    ) -> list[FileMetadata]:
        """Each file of ``release`` not yet here with these bytes; returns the ones stored now."""
        stored: list[FileMetadata] = []
        for meta, kind in ((release.payload, PAYLOAD), *((e, EXTRA) for e in release.extras)):
            known = next((f for f in self.catalog.files.get(release.version, ())
                          if f.board == board and f.filename == meta.filename), None)  # fmt: skip
            if known is not None and (known.sha256, known.size) == (meta.sha256_b64, meta.size):
                continue
            if self.settings.host_packages:
                created = await self._download(http, meta, release.version, board, kind)
            else:
                await self._confirm_size(http, meta)
                _, created = await self.publisher.publish_url(meta, release.version, None, board, kind)
            if created:
                stored.append(meta)
        return stored

    async def _download(
        self, http: httpx.AsyncClient, meta: FileMetadata, version: str, board: str, kind: str
    ) -> bool:
        log.info(
            "sync: downloading %s %s %s (%d bytes) from %s",
            version,
            board,
            meta.filename,
            meta.size,
            meta.url,
        )
        received = [0]
        try:
            async with http.stream("GET", meta.url) as reply:
                if reply.status_code != 200:
                    raise SyncFailure(f"GET {meta.url}: HTTP {reply.status_code}")
                length = reply.headers.get("content-length", "")
                if length.isdigit() and int(length) != meta.size:
                    raise CatalogError(
                        422, f"{meta.url} is {length} bytes, upstream's answer says {meta.size}"
                    )
                chunks = self._counted(reply.aiter_bytes(), received, meta, version, board)
                _, created = await self.publisher.publish_upload(
                    chunks, version, None, meta.filename, board, kind, expected=meta
                )
        except httpx.HTTPError as exc:
            raise SyncFailure(
                f"download of {meta.url} broke after {received[0]} of {meta.size} bytes: "
                f"{short(str(exc) or type(exc).__name__)}; nothing was kept"
            ) from None
        log.info(
            "sync: %s %s %s stored whole and checked (%d bytes)", version, board, meta.filename, meta.size
        )
        return created

    async def _counted(
        self, chunks: AsyncIterator[bytes], received: list[int], meta: FileMetadata, version: str, board: str
    ) -> AsyncIterator[bytes]:
        """The chunks, counted into ``received[0]``, with a progress line every few seconds."""
        said = time.monotonic()
        async for chunk in chunks:
            received[0] += len(chunk)
            if time.monotonic() - said >= PROGRESS_SECONDS:
                said = time.monotonic()
                log.info("sync: %s %s %s: %.1f of %.1f MB (%d%%)", version, board, meta.filename,
                         received[0] / 1e6, meta.size / 1e6, 100 * received[0] // max(1, meta.size))  # fmt: skip
            yield chunk

    async def _confirm_size(self, http: httpx.AsyncClient, meta: FileMetadata) -> None:
        """URL mode: a HEAD that says the file is missing or of another size refuses it; one that
        cannot be had (network, a server refusing HEAD) leaves the metadata checks alone."""
        try:
            reply = await http.head(meta.url)
        except httpx.HTTPError as exc:
            log.warning(
                "sync: cannot confirm the size of %s: %s", meta.url, short(str(exc) or type(exc).__name__)
            )
            return
        if reply.status_code in (404, 410):
            raise CatalogError(422, f"{meta.url}: HTTP {reply.status_code}, there is no such file")
        length = reply.headers.get("content-length", "")
        if reply.status_code == 200 and length.isdigit() and int(length) != meta.size:
            raise CatalogError(422, f"{meta.url} is {length} bytes, upstream's answer says {meta.size}")

    async def _recorded(self, state: SyncState, release: PlannedRelease, stored: list[FileMetadata]) -> None:
        """After every file of ``release`` is here: floor mark, channel history, activity."""
        async with self.storage.write() as tx:
            await self.catalog.refresh_under_lock()
            await clear_refusal(tx, release.version, state.board)
            if release.floor and state.channel not in self.catalog.release_channels.get(release.version, []):
                await _on_channel(tx, self.catalog, state.channel, release.version)
            if stored:
                where = (
                    "hosted here"
                    if self.settings.host_packages
                    else f"served from {release.payload.directory}"
                )
                extras = f" and {len(release.extras)} extra(s)" if release.extras else ""
                floor = ", a floor" if release.floor else ""
                await tx.activity(
                    "ReleaseSynced", "info",
                    f"release {release.version} {state.board} synced from upstream {state.channel}{floor}: "
                    f"{release.payload.filename} ({release.payload.size} bytes){extras}, {where}",
                    channel=state.channel, version=release.version,
                )  # fmt: skip
        if release.floor and release.version not in self.catalog.floors:
            await self.catalog.set_floor(release.version, True, release.floor_reason or "a floor upstream")

    async def _refuse(self, state: SyncState, version: str, reason: str) -> str:
        problem = f"release {short(version, 70)} {state.board} refused: {reason}"
        if self.catalog.payload(version, state.board) is None and len(version) <= 64:
            async with self.storage.write() as tx:
                await record_refusal(tx, version, state.board, reason)
        return problem

    async def _follow(self, state: SyncState) -> None:
        """Point the channel at upstream's target when it should (see the module docstring)."""
        target = state.upstream_version
        if target is None or self.catalog.payload(target, state.board) is None:
            return
        async with self.storage.write() as tx:
            await self.catalog.refresh_under_lock()
            current = self.catalog.channel_version(state.channel)
            if state.channel in self.catalog.pins:
                return
            if current is None or is_newer(target, current):
                await self.catalog.point_in(tx, state.channel, target, " (following upstream)")

    async def _finish(self, state: SyncState, problems: list[str]) -> None:
        failure = "; ".join(problems) if problems else None
        async with self.storage.write() as tx:
            if failure is None:
                state.last_success_at = self.clock()
                state.failures = 0
            else:
                state.failures += 1
                log.warning(
                    "sync %s %s failed (%d in a row): %s", state.channel, state.board, state.failures, failure
                )
                if failure != state.last_error:  # a failure that repeats is only logged
                    await tx.activity("SyncFailed", "error", f"sync of {state.channel} {state.board}: {failure}",
                                      channel=state.channel)  # fmt: skip
            state.last_error = failure
            await save_state(tx, state)


async def _on_channel(tx: Tx, catalog: Catalog, channel: str, version: str) -> None:
    """Record that ``version`` has been on ``channel`` (upstream's floor), without pointing it there."""
    await tx.conn.execute(insert(schema.channel_history).values(channel=channel, version=version, at=tx.now))

    def apply() -> None:
        seen = catalog.release_channels.setdefault(version, [])
        if channel not in seen:
            seen.append(channel)

    tx.after_commit.append(apply)
