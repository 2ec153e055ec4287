"""The Omaha endpoint's logic: parse, register the instance, apply events, decide the update check.

``OmahaHandler(settings, storage, catalog, registry, metrics)``;
``await handler.handle(body, ip, base_url) -> (http_status, body, content_type)``; ``base_url`` is a
string or a callable returning one (called only when an offer is made).

Malformed input (anything ``parse_request`` refuses) answers 400 ``bad omaha request: <reason>``
and records nothing. A body seen again is not parsed again (``coreroll.server.parse_memo``). Hot path: group, channel and release come from the catalog's memory; the
instance from the registry's memory (SQLite); when the instance re-checks with nothing changed and
its ``last_check`` in the database is younger than ``CHECKIN_REFRESH`` seconds, nothing is written
(Nebraska's rule). A check that needs a grant decision is decided optimistically from a read, and
re-decided inside the write transaction, so ``max N per period`` grants exactly N even under
concurrent checks.

What is offered: the channel's release, or first the next floor below it (``Catalog.next_floor``),
and of that release the payload for the request's ``board`` (``amd64-usr`` when absent) with the
board's extra packages, at this server's ``/packages/`` or, in URL mode, at the payload URL's directory. No payload for the board, or a payload only coreroll agents can apply
(synthetic or opaque) asked for by a request without ``coreroll_agent="1"`` (a real
update_engine), answers ``noupdate`` and holds the instance with that reason.

A track no group serves is ``error-unknownApplicationOrGroup``, except CoreOS's retired ``edge``
channel (by name or legacy group UUID: ``versions.retired_track_reason``): those machines are
registered without a group and answered ``noupdate``, held with the reason, unless a group has
track ``edge``.

Events: any (type, result) pair is accepted; the ones the lifecycle does not know (3/9 deferred,
...) are recorded in the history and change nothing, so the update check in the same request is
still answered.

``machineid=""`` (or none): registered as ``anonymous_machine_key(bootid, ip)`` = ``anon-`` + 27
hex of the SHA-256 of the boot id (of the client IP when the boot id is empty too): distinct
machines never share a record; one machine gets a new record per boot. Its record of the boot
that installed an update stops being in progress at Installed (``lifecycle.apply_event``).

Requests from one machine are handled one at a time in this process (``MachineLocks``), and every
write first checks, inside its transaction, that the machine's row is still the one the request
was decided from (``Registry.unchanged``; another server process on the same PostgreSQL may have
written it). If not, nothing is written and the request is decided again from the current row,
so a refusal computed earlier never overwrites a grant made meanwhile.

Quiet re-checks (SQLite): a check answered without a write, without a policy decision, from an
instance with no update in progress, is remembered per machine (``QUIET_MEMO_SIZE``). The machine's
next check is answered the same without deciding again while nothing it depended on moved: the
same request (every parsed field equal, same client address and agent flag), the very same cached
committed row (``Registry.cached`` holds immutable snapshots), ``last_check`` still younger than
``CHECKIN_REFRESH``, and no catalog change (``Storage.generation``: every write transaction but a
batch of instance rows; ``Catalog.loads``). What such a check is decided from depends on nothing
else: no clock (no grant, no update in progress to time out), no other machine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from coreroll.omaha.codes import UPDATECHECK_INTERNAL_ERROR, UPDATECHECK_NOUPDATE, InstanceStatus, is_os_app
from coreroll.omaha.protocol import (
    AppResponse,
    ExtraPackage,
    OmahaApp,
    OmahaParseError,
    OmahaRequest,
    UpdateOffer,
    app_response,
    build_response,
    parse_request,
    unknown_app_response,
)
from coreroll.server.catalog import Catalog, Group
from coreroll.server.lifecycle import (
    ANONYMOUS_PREFIX,
    Check,
    EventOutcome,
    apply_event,
    classify_check,
    grant,
    hold,
    land,
)
from coreroll.server.limits import SourceLimiter
from coreroll.server.machine_locks import MachineLocks
from coreroll.server.metrics import Metrics
from coreroll.server.parse_memo import ParseMemo
from coreroll.server.policy import Decision, decide, needs_stats
from coreroll.server.registry import HistoryEntry, Instance, Registry
from coreroll.server.settings import ServerSettings
from coreroll.server.storage import Storage, Tx
from coreroll.server.versions import DEFAULT_BOARD, is_newer, retired_track_reason

BaseUrl = str | Callable[[], str]
CHECKIN_REFRESH = 300.0  # seconds: a re-check with nothing changed writes last_check at most this often
# Bodies seen again are not parsed again (coreroll.server.parse_memo): at most 4096 bodies of at most
# 4 KiB (update_engine's are ~0.8 KiB) = 16 MiB.
PARSE_MEMO_SIZE = 4096
PARSE_MEMO_MAX_BODY = 4096
# Machines whose last quiet re-check is remembered (see the module docstring); FIFO.
QUIET_MEMO_SIZE = 8192
# Times one request is decided again because another server process changed its machine meanwhile.
STALE_RETRIES = 8
XML = "application/xml; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


def anonymous_machine_key(bootid: str, ip: str) -> str:
    """The registry key of a request with an empty machineid (see the module docstring)."""
    source = f"boot:{bootid}" if bootid else f"ip:{ip}"
    return ANONYMOUS_PREFIX + hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:27]


@dataclass(slots=True)
class QuietAnswer:
    """A machine's last quiet re-check: its answer and everything that answer was decided from."""

    old: Instance  # the cached committed row it was decided from
    app: OmahaApp
    ip: str
    agent: bool
    catalog: tuple[int, int]  # (Storage.generation, Catalog.loads) then
    answer: AppResponse
    counted: tuple[str, ...]  # the requests counter's labels it counted, counted again per re-check


class OmahaHandler:
    def __init__(
        self,
        settings: ServerSettings,
        storage: Storage,
        catalog: Catalog,
        registry: Registry,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.catalog = catalog
        self.registry = registry
        self.metrics = metrics
        self.clock = settings.clock
        self._parsed: ParseMemo[OmahaRequest] = ParseMemo(PARSE_MEMO_SIZE, PARSE_MEMO_MAX_BODY)
        # New machine ids between the cap check and their commit: counted against instance_cap so
        # concurrent first checks cannot overshoot it (the count itself moves only at commit).
        self._registering: set[str] = set()
        self._machines = MachineLocks()
        self._quiet: OrderedDict[str, QuietAnswer] = OrderedDict()
        self.limiter = SourceLimiter(
            settings.new_instances_per_source, settings.new_instances_window, settings.clock
        )

    async def handle(self, body: bytes, ip: str, base_url: BaseUrl) -> tuple[int, bytes, str]:
        started = time.perf_counter()
        request = self._parsed.get(body)
        if request is None:
            try:
                request = parse_request(body, accept_any_event=True)
            except OmahaParseError as exc:
                self.metrics.count("bad_request")
                return 400, f"bad omaha request: {exc.reason}\n".encode(), TEXT
            self._parsed.offer(body, request)
        if self.catalog.refresh_due():  # a plain call first: no coroutine per check when not due
            await self.catalog.load()
        answers: list[AppResponse] = []
        for app in request.apps:
            if not is_os_app(app.appid):
                self.metrics.count("unknown_app")
                answers.append(unknown_app_response(app))
                continue
            key = app.machineid or anonymous_machine_key(app.bootid, ip)
            answer = self._quiet_now(app, key, ip, request.coreroll_agent)
            if answer is None:
                answer = await self._handle_app(app, key, ip, base_url, request.coreroll_agent)
            answers.append(answer)
        self.metrics.observe_latency(time.perf_counter() - started)
        return 200, build_response(answers), XML

    def _offer(self, version: str | None, board: str, agent: bool, base_url: BaseUrl) -> UpdateOffer | None:
        payload = self.catalog.payload(version, board) if version else None
        if payload is None or (payload.agents_only and not agent):
            return None
        base = (self.settings.public_url or (base_url if isinstance(base_url, str) else base_url())).rstrip(
            "/"
        )
        extras = tuple(
            ExtraPackage(e.filename, e.size, e.sha256, e.sha1)
            for e in self.catalog.extras(payload.version, board)
        )
        return UpdateOffer(
            version=payload.version,
            codebase_url=payload.codebase(base),  # URL mode: the URL's directory
            package_name=payload.filename,
            size=payload.size,
            sha256_b64=payload.sha256,
            sha1_b64=payload.sha1,
            extras=extras,
        )

    def _choose(self, group: Group, running: str, board: str, agent: bool) -> tuple[str | None, str | None]:
        """(version to offer, why it cannot be offered to this node or None)."""
        channel_target = self.catalog.channel_version(group.channel)
        if channel_target is None or self.catalog.release(channel_target) is None:
            return None, None
        target = channel_target
        if is_newer(channel_target, running):
            target = self.catalog.next_floor(group.channel, running, channel_target, board) or channel_target
        payload = self.catalog.payload(target, board)
        if payload is None:
            return target, f"release {target} has no payload for board {board}"
        if payload.agents_only and not agent:
            article = "an" if payload.format[:1] in "aeiou" else "a"  # an opaque, a coreroll
            return target, (
                f"release {target} has {article} {payload.format} payload for {board}: only coreroll "
                "agents can apply it, not update_engine"
            )
        return target, None

    def _answer(self, app: OmahaApp, check: str | UpdateOffer, result: str) -> AppResponse:
        self.metrics.count(result if app.updatecheck else "event")
        return app_response(app, check, poll_interval=self.settings.poll_interval)

    def _quiet_now(self, app: OmahaApp, key: str, ip: str, agent: bool) -> AppResponse | None:
        """A quiet re-check answered without a coroutine when its machine is free: the remembered
        answer was decided with a group serving this very track, under this very catalog."""
        if key not in self._quiet or not self._machines.try_acquire(key):
            return None
        try:
            return self._quiet_answer(app, key, ip, agent)
        finally:
            self._machines.release(key)

    async def _handle_app(
        self, app: OmahaApp, key: str, ip: str, base_url: BaseUrl, agent: bool
    ) -> AppResponse:
        group = self.catalog.group_for_track(app.track)
        served = group if group is not None else retired_track_reason(app.track)  # or why it is held
        if served is None:
            self.metrics.count("unknown_group")
            return app_response(app, UPDATECHECK_INTERNAL_ERROR, status="error-unknownApplicationOrGroup")
        waited = not self._machines.try_acquire(key)  # uncontended: no coroutine
        if waited:
            await self._machines.acquire(key)
        try:
            # Free, _quiet_now has just asked; after a wait the one before may have left an answer.
            quiet = self._quiet_answer(app, key, ip, agent) if waited else None
            if quiet is not None:
                return quiet
            for _attempt in range(STALE_RETRIES):
                answer = await self._register_current(app, key, ip, base_url, served, agent)
                if answer is not None:
                    return answer
        finally:
            self._machines.release(key)
        # Other server processes kept changing this machine's row: it will simply check again.
        self.metrics.count("conflict")
        return app_response(app, UPDATECHECK_INTERNAL_ERROR, status="error-internal")

    def _catalog_state(self) -> tuple[int, int]:
        return self.storage.generation, self.catalog.loads

    def _quiet_answer(self, app: OmahaApp, key: str, ip: str, agent: bool) -> AppResponse | None:
        """The remembered answer of this machine's last quiet re-check, if it still holds."""
        memo = self._quiet.get(key)
        if memo is None:
            return None
        old = self.registry.cached(key)
        if (
            old is None
            or old is not memo.old
            or memo.catalog != self._catalog_state()
            or memo.ip != ip
            or memo.agent != agent
            or memo.app != app
            or self.clock() - old.last_check >= CHECKIN_REFRESH
        ):
            return None
        for label in memo.counted:
            self.metrics.count(label)
        return memo.answer

    def _remember_quiet(self, key: str, memo: QuietAnswer) -> None:
        if key not in self._quiet and len(self._quiet) >= QUIET_MEMO_SIZE:
            self._quiet.popitem(last=False)  # oldest first
        self._quiet[key] = memo

    async def _register_current(
        self, app: OmahaApp, key: str, ip: str, base_url: BaseUrl, group: Group | str, agent: bool
    ) -> AppResponse | None:
        """Decide from the committed state and write; None when that state changed before the write."""
        old = self.registry.cached(key) or await self.registry.get(key)
        reserved = old is None and key not in self._registering
        if reserved:
            taken = self.registry.count + len(self._registering)
            if taken >= self.settings.instance_cap or not self.limiter.allow(ip):
                self.metrics.count("instance_cap")
                return app_response(
                    app, UPDATECHECK_INTERNAL_ERROR, status="error-instanceRegistrationFailed"
                )
            self._registering.add(key)  # no await between the check and this line
        try:
            return await self._register(app, key, ip, base_url, group, old, agent)
        finally:
            if reserved:
                self._registering.discard(key)

    async def _register(
        self,
        app: OmahaApp,
        key: str,
        ip: str,
        base_url: BaseUrl,
        group: Group | str,
        old: Instance | None,
        agent: bool,
    ) -> AppResponse | None:
        """``group`` is the instance's group, or why no group serves its track (it is then held)."""
        catalog_state = self._catalog_state()  # read before any await: what this is decided from
        now = self.clock()
        board = app.board or DEFAULT_BOARD
        inst = old.copy() if old is not None else Instance(key, created_at=now)
        inst.ip, inst.version, inst.track = ip, app.version, app.track
        inst.group_id = None if isinstance(group, str) else group.id
        inst.oem, inst.oemversion, inst.alephversion = app.oem, app.oemversion, app.alephversion
        inst.board, inst.bootid = app.board, app.bootid
        inst.last_check = now

        history: list[HistoryEntry] = []
        outcomes: list[EventOutcome] = []
        for event in app.events:
            outcome = apply_event(inst, event, now)
            outcomes.append(outcome)
            if outcome.history is not None:
                history.append(outcome.history)
        failed = any(o.failure for o in outcomes)

        check: str | UpdateOffer = UPDATECHECK_NOUPDATE
        result = "noupdate"
        kind: Check | None = None
        target: str | None = None
        blocked: str | None = None
        if isinstance(group, str):  # no group serves the track: held, saying why
            if app.updatecheck:
                result = "onhold"
                if (entry := hold(inst, group)) is not None:
                    history.append(entry)
        elif app.updatecheck and not failed:
            target, blocked = self._choose(group, inst.version, board, agent)
            kind = classify_check(inst, target, now, group.policy.update_timeout_seconds)
            if kind is Check.LANDED:
                history.append(land(inst))
                outcomes.append(EventOutcome(completed=True))
            elif kind is Check.RESERVE:
                offer = self._offer(inst.last_update_version, board, agent, base_url)
                if offer is not None:
                    check, result = offer, "ok"

        no_payload = False
        if kind is Check.NEEDS_GRANT and blocked is not None:
            no_payload = True
            self.metrics.count("no_payload")
            entry = hold(inst, blocked)
            if entry is not None:
                history.append(entry)
            kind, result = None, "onhold"

        decided = kind is Check.NEEDS_GRANT  # a policy decision: clock and other machines count
        if kind is Check.NEEDS_GRANT:
            assert target is not None and not isinstance(group, str)  # set only with a group
            decision = await self._decide(group, target, now, None)
            if not decision.grant and not decision.halt_reason:
                entry = hold(inst, decision.reason or "held")
                if entry is not None:
                    history.append(entry)
                kind = None  # a refusal; written below only if something changed
                result = "onhold"

        unchanged = old is not None and inst.same_state(old) and now - old.last_check < CHECKIN_REFRESH
        if kind is not Check.NEEDS_GRANT and unchanged and not history:
            answer = self._answer(app, check, result)
            quiet = not decided and not inst.update_in_progress and isinstance(check, str)
            if (
                quiet
                and old is not None
                and old is self.registry.cached(key)
                and catalog_state == self._catalog_state()
            ):
                counted = ("no_payload",) * no_payload + (result if app.updatecheck else "event",)
                self._remember_quiet(key, QuietAnswer(old, app, ip, agent, catalog_state, answer, counted))
            return answer

        group_effects = not isinstance(group, str) and any(o.failure or o.completed for o in outcomes)
        if kind is not Check.NEEDS_GRANT and not group_effects:
            # Only this instance changes: share a commit with other such writes (group commit).
            saved = await self.storage.write_batched(
                lambda tx: self._save_if_unchanged(tx, inst, history, old)
            )
            return None if saved is None else self._answer(app, check, result)
        assert not isinstance(group, str)
        async with self.storage.write() as tx:
            if not await self.registry.unchanged(tx, inst.machine_id, old):
                return None  # nothing written: decided again from the current row
            group = await self.catalog.fresh_group(tx, group.id)  # current under the write lock
            if kind is Check.NEEDS_GRANT:
                assert target is not None
                check, result, group = await self._grant_or_hold(
                    tx, group, inst, target, history, base_url, (board, agent)
                )
            await self.registry.save(tx, inst, history, is_new=old is None)
            for outcome in outcomes:
                group = await self._after_event(tx, group, inst, outcome)
        return self._answer(app, check, result)

    async def _save_if_unchanged(
        self, tx: Tx, inst: Instance, history: list[HistoryEntry], old: Instance | None
    ) -> dict[str, object] | None:
        if not await self.registry.unchanged(tx, inst.machine_id, old):
            return None
        return await self.registry.save(tx, inst, history, is_new=old is None, defer=True)

    async def _decide(self, group: Group, target: str, now: float, tx: Tx | None) -> Decision:
        policy = group.policy
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        if not needs_stats(policy):
            return decide(policy, None, moment)
        if tx is not None:
            stats = await self.registry.stats(tx.conn, group.id, target, policy, now)
        else:
            async with self.storage.read() as conn:
                stats = await self.registry.stats(conn, group.id, target, policy, now)
        return decide(policy, stats, moment)

    async def _grant_or_hold(
        self,
        tx: Tx,
        group: Group,
        inst: Instance,
        target: str,
        history: list[HistoryEntry],
        base_url: BaseUrl,
        client: tuple[str, bool],
    ) -> tuple[str | UpdateOffer, str, Group]:
        decision = await self._decide(group, target, tx.now, tx)
        offer = self._offer(target, *client, base_url) if decision.grant else None
        if offer is None:
            entry = hold(inst, decision.reason or f"release {target} is missing")
            if entry is not None:
                history.append(entry)
            if decision.halt_reason and group.policy.updates_enabled:
                group = await self.catalog.halt(tx, group, decision.halt_reason)
            return UPDATECHECK_NOUPDATE, "onhold", group
        history.append(grant(inst, target, tx.now))
        self.metrics.granted.labels(group.id).inc()
        rollout = self.catalog.channel_version(group.channel) or target  # a floor is a step of it
        if not group.rollout_in_progress or group.rollout_version != rollout:
            group = await self.catalog.set_rollout(tx, group, True, rollout)
            await tx.activity("RolloutStarted", "info", f"rollout of {rollout} started in group {group.id}",
                              group=group.id, channel=group.channel, version=rollout)  # fmt: skip
        return offer, "ok", group

    async def _after_event(self, tx: Tx, group: Group, inst: Instance, outcome: EventOutcome) -> Group:
        if outcome.failure:
            self.metrics.failures.labels(group.id).inc()
            await tx.activity("InstanceUpdateFailed", "error", f"{inst.machine_id}: {outcome.failure}",
                              group=group.id, channel=group.channel, version=inst.last_update_version,
                              instance=inst.machine_id)  # fmt: skip
            if group.policy.safe_mode and group.policy.updates_enabled:
                reason = f"safe mode: update failed on {inst.machine_id}: {outcome.failure}"
                group = await self.catalog.halt(tx, group, reason)
        if (
            outcome.completed
            and inst.status == InstanceStatus.Complete
            and group.rollout_in_progress
            and group.rollout_version == inst.version
            and await self.registry.all_on_version(tx.conn, group.id, inst.version, tx.now)
        ):
            group = await self.catalog.set_rollout(tx, group, False, inst.version)
            await tx.activity("RolloutFinished", "success", f"rollout of {inst.version} finished in group {group.id}",
                              group=group.id, channel=group.channel, version=inst.version)  # fmt: skip
        return group
