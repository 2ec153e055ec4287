"""Channels, releases and groups, cached in memory (the Omaha hot path never queries them).

``Catalog(storage, base_url, refresh_seconds)``: ``await load()``, ``await ensure_defaults()``
(channels alpha/beta/stable and one group per channel, track == channel). Lookups are plain dict
reads: ``group_for_track(track)``, ``group(id)``, ``channel_version(name)``, ``release(version)``,
``payload(version, board)`` (the one payload a release holds for a board), ``extras(version,
board)``, ``file_at(path)`` (what /packages serves), ``next_floor(channel, running, target,
board)``.

Floors: a release marked mandatory (``set_floor``) is a floor on every channel it has been on. A
node running below it, on such a channel, whose channel offers something newer, is offered the
lowest floor above its version first (only floors with a payload for the node's board count: a
floor published for amd64 only is no step for arm64 nodes).

Publishing is atomic (``publish_file``): the existence check, placing the file and the insert run
under the storage write lock (on PostgreSQL also ordered across servers), so two uploads of one
version/board/file with different bytes give one success and one 409; the same bytes again are
idempotent (``created`` False).
Writes (``publish_file``, ``set_floor``, ``point_channel``, ``promote``, ``create_group``, ``update_policy``,
``set_enabled``, and inside an Omaha transaction ``halt`` / ``set_rollout``) commit, emit feed
events and activity, and update the cache only after the commit. With several server processes on
one PostgreSQL, ``maybe_refresh()`` reloads the cache every ``refresh_seconds``.

A channel never points at a release without a payload (``require_payload``: 409), whichever way
it is moved (publish with a channel, point, promote).

Errors: ``CatalogError(status, message)`` (404 unknown, 409 conflict, 400 invalid).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Column, String, insert, select, update

from coreroll.server import schema
from coreroll.server.policy import Policy, PolicyError
from coreroll.server.records import POLICY_COLUMNS, channel_json, group_json, release_json
from coreroll.server.storage import Storage, Tx
from coreroll.server.versions import (
    DEFAULT_CHANNELS,
    LEGACY_TRACKS,
    channel_sort_key,
    is_newer,
    promotion_source,
    version_key,
)

_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class CatalogError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Release:
    version: str
    filename: str
    size: int
    sha256: str
    sha1: str
    signed: bool
    created_at: float

    def row(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


PAYLOAD = "payload"
EXTRA = "extra"
AGENT_ONLY_FORMATS = frozenset({"coreroll", "opaque"})  # no update_engine can apply these


@dataclass(slots=True)
class ReleaseFile:
    """One file of a release (a ``release_files`` row): a board's payload or an extra package."""

    version: str
    board: str
    filename: str
    kind: str  # PAYLOAD or EXTRA
    path: str  # under <data>/packages and /packages/
    size: int
    sha256: str  # base64
    sha1: str  # base64
    format: str  # "update_engine" | "coreroll" | "opaque" | "extra"
    created_at: float
    url: str | None = None  # URL mode: served there (its directory is the codebase), not from here

    def row(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}

    @property
    def agents_only(self) -> bool:
        return self.format in AGENT_ONLY_FORMATS

    @property
    def directory(self) -> str:
        return self.path.rpartition("/")[0]

    def codebase(self, base_url: str) -> str:
        """The Omaha codebase a node joins with ``filename``: the URL's directory in URL mode (as
        Nebraska's package URL), else this server's /packages/ directory of the file."""
        if self.url is not None:
            return self.url.rpartition("/")[0] + "/"
        return f"{base_url.rstrip('/')}/packages/{self.directory}/"

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {
            "board": self.board,
            "filename": self.filename,
            "url": self.url or f"{base_url.rstrip('/')}/packages/{self.path}",
            "hosted": self.url is None,
            "size": self.size,
            "sha256": self.sha256,
            "sha1": self.sha1,
            "format": self.format,
        }


@dataclass(slots=True)
class Group:
    id: str
    name: str
    track: str
    channel: str
    policy: Policy = field(default_factory=Policy)
    rollout_in_progress: bool = False
    rollout_version: str | None = None
    halted_reason: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "track": self.track,
            "channel": self.channel,
            **self.policy.to_json(),
            "rollout_in_progress": self.rollout_in_progress,
            "rollout_version": self.rollout_version,
            "halted_reason": self.halted_reason,
        }

    def to_json(self) -> dict[str, Any]:
        return group_json(self.row())


def _group_from_row(row: Any) -> Group:
    data = dict(row._mapping)
    policy = Policy(**{key: data[key] for key in POLICY_COLUMNS})
    return Group(
        data["id"], data["name"], data["track"], data["channel"], policy,
        bool(data["rollout_in_progress"]), data["rollout_version"], data["halted_reason"],
    )  # fmt: skip


def _identity(file: ReleaseFile) -> tuple[str, int, str, str | None]:
    """What must match for a second publish of one file to be the same file (idempotent)."""
    return file.sha256, file.size, file.kind, file.url


def check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > 64 or not set(name) <= _NAME_OK:
        raise CatalogError(400, f"{kind} {name!r}: use 1-64 of letters, digits, '-', '_', '.'")
    return name


def check_width(field: str, value: str, column: Column[Any]) -> str:
    """``value`` if it fits ``column`` (a String(n)): PostgreSQL refuses a longer one at write time."""
    width = column.type.length if isinstance(column.type, String) else None
    if width is not None and len(value) > width:
        raise CatalogError(400, f"{field}: at most {width} characters, got {len(value)}")
    return value


class Catalog:
    def __init__(self, storage: Storage, base_url: str, refresh_seconds: float | None = None) -> None:
        self.storage = storage
        self.base_url = base_url
        self.refresh_seconds = refresh_seconds
        self.groups: dict[str, Group] = {}
        self._by_track: dict[str, Group] = {}
        self.channels: dict[str, dict[str, Any]] = {}  # name -> {name, version, updated_at}
        self.releases: dict[str, Release] = {}
        self.release_channels: dict[str, list[str]] = {}  # version -> channels it has been on
        self.files: dict[str, list[ReleaseFile]] = {}  # version -> its files
        self._by_path: dict[str, ReleaseFile] = {}
        self.floors: dict[str, str | None] = {}  # version -> reason
        self.pins: dict[str, str] = {}  # channel -> the version it is pinned at (coreroll.server.pins)
        self._loaded_at = 0.0
        self.loads = 0  # times load() replaced the cache (what was derived from it may be stale)

    # ---- cache -------------------------------------------------------------------------------
    async def load(self) -> None:
        async with self.storage.read() as conn:
            groups = [_group_from_row(r) for r in await conn.execute(select(schema.groups))]
            channels = [dict(r._mapping) for r in await conn.execute(select(schema.channels))]
            releases = [Release(**dict(r._mapping)) for r in await conn.execute(select(schema.releases))]
            history = list(
                await conn.execute(select(schema.channel_history).order_by(schema.channel_history.c.id))
            )
            files = [
                ReleaseFile(**dict(r._mapping)) for r in await conn.execute(select(schema.release_files))
            ]
            floors = list(await conn.execute(select(schema.release_floors)))
            pins = list(await conn.execute(select(schema.channel_pins)))
        self.groups = {g.id: g for g in groups}
        self._reindex()
        self.channels = {c["name"]: c for c in channels}
        self.releases = {r.version: r for r in releases}
        self.release_channels = {}
        for h in history:
            seen = self.release_channels.setdefault(h.version, [])
            if h.channel not in seen:
                seen.append(h.channel)
        self.files, self._by_path = {}, {}
        for f in files:
            self._store_file(f)
        self.floors = {f.version: f.reason for f in floors}
        self.pins = {p.channel: p.version for p in pins}
        self._loaded_at = time.monotonic()
        self.loads += 1

    def _store_file(self, file: ReleaseFile) -> None:
        self.files.setdefault(file.version, []).append(file)
        if file.url is None:  # a URL-mode file is not served under /packages/
            self._by_path[file.path] = file

    async def _sync(self) -> None:
        """Under the write lock, with several servers on one database: start from what they committed."""
        if self.refresh_seconds is not None:
            await self.load()

    async def fresh_group(self, tx: Tx, group_id: str) -> Group:
        """The group as committed now (other servers may have changed it), inside ``tx``."""
        if self.refresh_seconds is None:
            return self.group(group_id)
        row = (await tx.conn.execute(select(schema.groups).where(schema.groups.c.id == group_id))).first()
        if row is None:
            raise CatalogError(404, f"no group {group_id!r}")
        return _group_from_row(row)

    def refresh_due(self) -> bool:
        """Time to reload (PostgreSQL only); a plain call, so the hot path awaits nothing otherwise."""
        return self.refresh_seconds is not None and time.monotonic() - self._loaded_at > self.refresh_seconds

    async def maybe_refresh(self) -> None:
        if self.refresh_due():
            await self.load()

    def _reindex(self) -> None:
        self._by_track = {g.track: g for g in self.groups.values()}

    def group_for_track(self, track: str) -> Group | None:
        found = self._by_track.get(track)
        if found is None and track.strip("{}").lower() in LEGACY_TRACKS:
            found = self._by_track.get(LEGACY_TRACKS[track.strip("{}").lower()])
        return found

    def group(self, group_id: str) -> Group:
        found = self.groups.get(group_id)
        if found is None:
            raise CatalogError(404, f"no group {group_id!r} (groups: {', '.join(sorted(self.groups))})")
        return found

    def channel_version(self, name: str) -> str | None:
        channel = self.channels.get(name)
        return channel["version"] if channel else None

    def release(self, version: str) -> Release | None:
        return self.releases.get(version)

    def payload(self, version: str, board: str) -> ReleaseFile | None:
        for file in self.files.get(version, ()):
            if file.kind == PAYLOAD and file.board == board:
                return file
        return None

    def extras(self, version: str, board: str) -> list[ReleaseFile]:
        found = [f for f in self.files.get(version, ()) if f.kind == EXTRA and f.board == board]
        return sorted(found, key=lambda f: f.filename)

    def file_at(self, path: str) -> ReleaseFile | None:
        return self._by_path.get(path)

    def _find(self, version: str, board: str, filename: str) -> ReleaseFile | None:
        for file in self.files.get(version, ()):
            if file.board == board and file.filename == filename:
                return file
        return None

    def next_floor(self, channel: str, running: str, target: str, board: str) -> str | None:
        """The lowest floor above ``running`` and below ``target`` that applies here, or None."""
        steps = [
            v
            for v in self.floors
            if is_newer(v, running)
            and is_newer(target, v)
            and channel in self.release_channels.get(v, ())
            and self.payload(v, board) is not None
        ]
        return min(steps, key=version_key) if steps else None

    def release_json(self, version: str, base_url: str | None = None) -> dict[str, Any]:
        """The release object of docs/api.md; its links start with ``base_url`` (default: the server's)."""
        return self._release_preview(self.releases[version], None, base_url)

    def channel_list(self) -> list[dict[str, Any]]:
        return [
            channel_json(self.channels[n], self.pins.get(n))
            for n in sorted(self.channels, key=channel_sort_key)
        ]

    def release_list(self, base_url: str) -> list[dict[str, Any]]:
        ordered = sorted(self.releases.values(), key=lambda r: r.created_at, reverse=True)
        return [self._release_preview(r, None, base_url) for r in ordered]

    def group_list(self) -> list[dict[str, Any]]:
        return [g.to_json() for g in sorted(self.groups.values(), key=lambda g: channel_sort_key(g.id))]

    # ---- writes ------------------------------------------------------------------------------
    async def ensure_defaults(self) -> None:
        if not any(self._missing_defaults()):
            return
        async with self.storage.write() as tx:
            await self._sync()  # a server starting at the same time may have created them since load()
            missing_channels, missing_groups = self._missing_defaults()
            for name in missing_channels:
                await self._put_channel(tx, name, None)
            for name in missing_groups:
                await self._insert_group(tx, Group(name, name, name, name))

    def _missing_defaults(self) -> tuple[list[str], list[str]]:
        channels = [c for c in DEFAULT_CHANNELS if c not in self.channels]
        groups = [c for c in DEFAULT_CHANNELS if c not in self.groups and self.group_for_track(c) is None]
        return channels, groups

    async def _put_channel(self, tx: Tx, name: str, version: str | None) -> dict[str, Any]:
        row = {"name": name, "version": version, "updated_at": tx.now}
        if name in self.channels:
            await tx.conn.execute(update(schema.channels).where(schema.channels.c.name == name).values(row))
        else:
            await tx.conn.execute(insert(schema.channels).values(row))
        if version is not None:
            await tx.conn.execute(
                insert(schema.channel_history).values(channel=name, version=version, at=tx.now)
            )
        tx.emit("channel", channel_json(row, self.pins.get(name)))

        def apply() -> None:
            self.channels[name] = row
            if version is not None:
                seen = self.release_channels.setdefault(version, [])
                if name not in seen:
                    seen.append(name)

        tx.after_commit.append(apply)
        return channel_json(row, self.pins.get(name))

    async def _insert_group(self, tx: Tx, group: Group) -> None:
        await tx.conn.execute(insert(schema.groups).values(**group.row(), updated_at=tx.now))
        tx.emit("group", group.to_json())
        tx.after_commit.append(lambda: self._store_group(group))

    def _store_group(self, group: Group) -> None:
        self.groups[group.id] = group
        self._reindex()

    async def _save_group(self, tx: Tx, group: Group) -> None:
        await tx.conn.execute(
            update(schema.groups)
            .where(schema.groups.c.id == group.id)
            .values(**group.row(), updated_at=tx.now)
        )
        tx.emit("group", group.to_json())
        tx.after_commit.append(lambda: self._store_group(group))

    async def publish_file(
        self,
        release: Release,
        file: ReleaseFile,
        channel: str | None,
        place: Callable[[], Awaitable[None]],
    ) -> tuple[dict[str, Any], bool]:
        """Add ``file`` (and ``release`` if the version is new), then point ``channel`` at it.

        ``place()`` moves the file's bytes to ``<packages>/<file.path>``; it runs under the write
        lock after the checks, so it never replaces a published file. Returns (release object,
        created): created is False when the same file with the same bytes was already there.
        """
        if channel is not None and channel not in self.channels:
            raise CatalogError(404, f"no channel {channel!r}")
        async with self.storage.write() as tx:
            await self._sync()
            if channel is not None:
                self.require_payload(file.version, file)
                self.refuse_if_pinned(channel)
            created = False
            same = self._find(file.version, file.board, file.filename)
            if same is not None:
                if _identity(same) != _identity(file):
                    where = f", at {same.url}" if same.url else ", hosted here"
                    raise CatalogError(
                        409,
                        f"release {file.version} already has {file.board}/{file.filename} "
                        f"({same.kind}, {same.size} bytes, sha256 {same.sha256}{where}); publish other "
                        "bytes as a new version",
                    )
            else:
                other = self.payload(file.version, file.board) if file.kind == PAYLOAD else None
                if other is not None:
                    raise CatalogError(
                        409,
                        f"release {file.version} already has a {file.board} payload ({other.filename}); "
                        "a release holds one payload per board",
                    )
                await place()
                if file.version not in self.releases:
                    await tx.conn.execute(insert(schema.releases).values(**release.row()))
                    await tx.activity("ReleasePublished", "info", f"release {release.version} published",
                                      version=release.version)  # fmt: skip
                    tx.after_commit.append(lambda: self.releases.__setitem__(release.version, release))
                await tx.conn.execute(insert(schema.release_files).values(**file.row()))
                tx.after_commit.append(lambda: self._store_file(file))
                created = True
                tx.emit("release", self._release_preview(release, file))
            if channel is not None:
                await self._point(tx, channel, file.version)
        return self.release_json(file.version), created

    def _release_preview(
        self, release: Release, file: ReleaseFile | None, base_url: str | None = None
    ) -> dict[str, Any]:
        """The release object as it will be once ``file`` (and maybe ``release``) is committed."""
        base = base_url or self.base_url
        known = self.releases.get(release.version, release)
        files = [*self.files.get(release.version, ()), *([file] if file is not None else [])]
        return release_json(
            known.row(),
            base,
            self.release_channels.get(release.version, []),
            files=[f.to_json(base) | {"kind": f.kind} for f in files],
            floor=release.version in self.floors,
            floor_reason=self.floors.get(release.version),
        )

    async def adopt_files(self, files: list[ReleaseFile]) -> int:
        """Record files of releases stored before ``release_files`` existed (server start); returns
        how many were recorded here (not by another server starting at the same time)."""
        async with self.storage.write() as tx:
            await self._sync()  # a server starting at the same time may have adopted them since load()
            files = [f for f in files if not self.files.get(f.version)]
            if not files:
                return 0
            await tx.conn.execute(insert(schema.release_files), [f.row() for f in files])
            tx.after_commit.extend(functools.partial(self._store_file, file) for file in files)
        return len(files)

    async def set_floor(self, version: str, floor: bool, reason: str | None) -> dict[str, Any]:
        """Mark ``version`` mandatory (a floor), or clear the mark."""
        if version not in self.releases:
            raise CatalogError(404, f"no release {version!r}")
        async with self.storage.write() as tx:
            await self._sync()
            table = schema.release_floors
            await tx.conn.execute(table.delete().where(table.c.version == version))
            if floor:
                await tx.conn.execute(insert(table).values(version=version, reason=reason, created_at=tx.now))
                tx.after_commit.append(lambda: self.floors.__setitem__(version, reason))
                text = f"release {version} is a floor" + (f": {reason}" if reason else "")
            else:
                tx.after_commit.append(lambda: self.floors.pop(version, None))
                text = f"release {version} is no longer a floor"
            obj = self.release_json(version) | {"floor": floor, "floor_reason": reason if floor else None}
            tx.emit("release", obj)
            await tx.activity("ReleaseFloorChanged", "info", text, version=version)
        return obj

    async def _point(self, tx: Tx, channel: str, version: str, why: str = "") -> dict[str, Any]:
        obj = await self._put_channel(tx, channel, version)
        await tx.activity("ChannelUpdated", "info", f"channel {channel} now offers {version}{why}",
                          channel=channel, version=version)  # fmt: skip
        return obj

    def require_payload(self, version: str, adding: ReleaseFile | None = None) -> None:
        """A channel may point only at a release with a payload (with ``adding``, if given): with
        extra packages alone, every node of the channel would be put on hold."""
        files = [*self.files.get(version, ()), *([adding] if adding is not None else [])]
        if not any(f.kind == PAYLOAD for f in files):
            raise CatalogError(
                409,
                f"release {version} has no payload, only extra packages: a channel pointed at it would "
                "put every node on hold; publish its payload first (with the channel), or the extras "
                "without one",
            )

    async def point_in(self, tx: Tx, channel: str, version: str, why: str = "") -> dict[str, Any]:
        """Point ``channel`` at ``version`` inside ``tx`` (pins and the upstream sync; no checks)."""
        return await self._point(tx, channel, version, why)

    async def refresh_under_lock(self) -> None:
        """Inside a write transaction: start from what other servers on the database committed."""
        await self._sync()

    def refuse_if_pinned(self, channel: str) -> None:
        pinned = self.pins.get(channel)
        if pinned is not None:
            raise CatalogError(
                409,
                f"channel {channel} is pinned at {pinned}: `coreroll channel unpin {channel}` first, "
                f"or pin it at another version",
            )

    async def point_channel(self, channel: str, version: str) -> dict[str, Any]:
        check_name("channel", channel)
        if version not in self.releases:
            raise CatalogError(404, f"no release {version!r}")
        async with self.storage.write() as tx:
            await self._sync()
            self.require_payload(version)
            self.refuse_if_pinned(channel)
            return await self._point(tx, channel, version)

    async def promote(self, version: str, to: str) -> dict[str, Any]:
        if version not in self.releases:
            raise CatalogError(404, f"no release {version!r}")
        source = promotion_source(to)
        if source is None:
            raise CatalogError(400, f"cannot promote to {to!r}: promotion goes alpha -> beta -> stable")
        if source not in self.release_channels.get(version, []):
            raise CatalogError(
                409, f"release {version} has never been on {source}; promote it to {source} first"
            )
        async with self.storage.write() as tx:
            await self._sync()
            self.require_payload(version)
            self.refuse_if_pinned(to)
            return await self._point(tx, to, version)

    async def create_group(self, body: dict[str, Any]) -> dict[str, Any]:
        group_id = check_name("group id", body.get("id"))
        if group_id in self.groups:
            raise CatalogError(409, f"group {group_id!r} exists")
        track = body.get("track", group_id)
        channel = body.get("channel", "stable")
        name = check_width("name", str(body.get("name") or group_id), schema.groups.c.name)
        if isinstance(track, str):
            check_width("track", track, schema.groups.c.track)
        if not isinstance(track, str) or not track or self.group_for_track(track) is not None:
            raise CatalogError(409, f"track {track!r} is invalid or used by another group")
        if channel not in self.channels:
            raise CatalogError(404, f"no channel {channel!r}")
        try:
            policy = Policy().updated(body.get("policy") or {})
        except PolicyError as exc:
            raise CatalogError(400, str(exc)) from exc
        group = Group(group_id, name, track, channel, policy)
        async with self.storage.write() as tx:
            await self._sync()
            await self._insert_group(tx, group)
        return group.to_json()

    async def update_policy(self, group_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        self.group(group_id)
        async with self.storage.write() as tx:
            await self._sync()
            group = self.group(group_id)  # re-read under the write lock: no lost updates
            try:
                policy = group.policy.updated(changes)
            except PolicyError as exc:
                raise CatalogError(400, str(exc)) from exc
            new = replace(group, policy=policy)
            await self._save_group(tx, new)
            summary = ", ".join(f"{k}={v}" for k, v in changes.items())
            await tx.activity(
                "GroupPolicyChanged", "info", f"group {group_id} policy: {summary}", group=group_id
            )
        return new.to_json()

    async def set_enabled(self, group_id: str, enabled: bool) -> dict[str, Any]:
        self.group(group_id)
        async with self.storage.write() as tx:
            await self._sync()
            group = self.group(group_id)
            new = replace(group, policy=replace(group.policy, updates_enabled=enabled))
            if enabled:
                new.halted_reason = None
            await self._save_group(tx, new)
            kind, verb = ("GroupResumed", "resumed") if enabled else ("GroupPaused", "paused")
            await tx.activity(kind, "info", f"group {group_id} {verb}", group=group_id)
        return new.to_json()

    async def halt(self, tx: Tx, group: Group, reason: str) -> Group:
        """Inside an Omaha transaction: stop a safe-mode group after a failure."""
        new = replace(group, policy=replace(group.policy, updates_enabled=False), halted_reason=reason,
                      rollout_in_progress=False)  # fmt: skip
        await self._save_group(tx, new)
        await tx.activity("RolloutFailed", "error", f"group {group.id} halted: {reason}", group=group.id,
                          channel=group.channel, version=group.rollout_version)  # fmt: skip
        return new

    async def set_rollout(self, tx: Tx, group: Group, in_progress: bool, version: str | None) -> Group:
        new = replace(group, rollout_in_progress=in_progress, rollout_version=version)
        await self._save_group(tx, new)
        return new
