"""Channels, releases and groups, cached in memory (the Omaha hot path never queries them).

``Catalog(storage, base_url, refresh_seconds)``: ``await load()``, ``await ensure_defaults()``
(channels alpha/beta/stable and one group per channel, track == channel). Lookups are plain dict
reads: ``group_for_track(track)``, ``group(id)``, ``channel_version(name)``, ``release(version)``.
Writes (``add_release``, ``point_channel``, ``promote``, ``create_group``, ``update_policy``,
``set_enabled``, and inside an Omaha transaction ``halt`` / ``set_rollout``) commit, emit feed
events and activity, and update the cache only after the commit. With several server processes on
one PostgreSQL, ``maybe_refresh()`` reloads the cache every ``refresh_seconds``.

Errors: ``CatalogError(status, message)`` (404 unknown, 409 conflict, 400 invalid).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import insert, select, update

from coreroll.server import schema
from coreroll.server.policy import Policy, PolicyError
from coreroll.server.records import POLICY_COLUMNS, channel_json, group_json, release_json
from coreroll.server.storage import Storage, Tx
from coreroll.server.versions import DEFAULT_CHANNELS, LEGACY_TRACKS, channel_sort_key, promotion_source

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


def check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > 64 or not set(name) <= _NAME_OK:
        raise CatalogError(400, f"{kind} {name!r}: use 1-64 of letters, digits, '-', '_', '.'")
    return name


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
        self._loaded_at = 0.0

    # ---- cache -------------------------------------------------------------------------------
    async def load(self) -> None:
        async with self.storage.read() as conn:
            groups = [_group_from_row(r) for r in await conn.execute(select(schema.groups))]
            channels = [dict(r._mapping) for r in await conn.execute(select(schema.channels))]
            releases = [Release(**dict(r._mapping)) for r in await conn.execute(select(schema.releases))]
            history = list(
                await conn.execute(select(schema.channel_history).order_by(schema.channel_history.c.id))
            )
        self.groups = {g.id: g for g in groups}
        self._reindex()
        self.channels = {c["name"]: c for c in channels}
        self.releases = {r.version: r for r in releases}
        self.release_channels = {}
        for h in history:
            seen = self.release_channels.setdefault(h.version, [])
            if h.channel not in seen:
                seen.append(h.channel)
        self._loaded_at = time.monotonic()

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

    async def maybe_refresh(self) -> None:
        if self.refresh_seconds is not None and time.monotonic() - self._loaded_at > self.refresh_seconds:
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

    def channel_list(self) -> list[dict[str, Any]]:
        return [channel_json(self.channels[n]) for n in sorted(self.channels, key=channel_sort_key)]

    def release_list(self, base_url: str) -> list[dict[str, Any]]:
        ordered = sorted(self.releases.values(), key=lambda r: r.created_at, reverse=True)
        return [release_json(r.row(), base_url, self.release_channels.get(r.version, [])) for r in ordered]

    def group_list(self) -> list[dict[str, Any]]:
        return [g.to_json() for g in sorted(self.groups.values(), key=lambda g: channel_sort_key(g.id))]

    # ---- writes ------------------------------------------------------------------------------
    async def ensure_defaults(self) -> None:
        missing_channels = [c for c in DEFAULT_CHANNELS if c not in self.channels]
        missing_groups = [
            c for c in DEFAULT_CHANNELS if c not in self.groups and self.group_for_track(c) is None
        ]
        if not missing_channels and not missing_groups:
            return
        async with self.storage.write() as tx:
            for name in missing_channels:
                await self._put_channel(tx, name, None)
            for name in missing_groups:
                await self._insert_group(tx, Group(name, name, name, name))

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
        tx.emit("channel", channel_json(row))

        def apply() -> None:
            self.channels[name] = row
            if version is not None:
                seen = self.release_channels.setdefault(version, [])
                if name not in seen:
                    seen.append(name)

        tx.after_commit.append(apply)
        return channel_json(row)

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

    async def add_release(self, release: Release, channel: str | None) -> dict[str, Any]:
        if channel is not None and channel not in self.channels:
            raise CatalogError(404, f"no channel {channel!r}")
        existing = self.releases.get(release.version)
        if existing is not None and (existing.sha256, existing.size) != (release.sha256, release.size):
            raise CatalogError(409, f"release {release.version} exists with different content")
        async with self.storage.write() as tx:
            await self._sync()
            if existing is None and release.version not in self.releases:
                await tx.conn.execute(insert(schema.releases).values(**release.row()))
                seen = self.release_channels.get(release.version, [])
                tx.emit("release", release_json(release.row(), self.base_url, seen))
                await tx.activity("ReleasePublished", "info", f"release {release.version} published",
                                  version=release.version)  # fmt: skip
                tx.after_commit.append(lambda: self.releases.__setitem__(release.version, release))
            if channel is not None:
                await self._point(tx, channel, release.version)
        return release_json(release.row(), self.base_url, self.release_channels.get(release.version, []))

    async def _point(self, tx: Tx, channel: str, version: str) -> dict[str, Any]:
        obj = await self._put_channel(tx, channel, version)
        await tx.activity("ChannelUpdated", "info", f"channel {channel} now offers {version}",
                          channel=channel, version=version)  # fmt: skip
        return obj

    async def point_channel(self, channel: str, version: str) -> dict[str, Any]:
        check_name("channel", channel)
        if version not in self.releases:
            raise CatalogError(404, f"no release {version!r}")
        async with self.storage.write() as tx:
            await self._sync()
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
            return await self._point(tx, to, version)

    async def create_group(self, body: dict[str, Any]) -> dict[str, Any]:
        group_id = check_name("group id", body.get("id"))
        if group_id in self.groups:
            raise CatalogError(409, f"group {group_id!r} exists")
        track = body.get("track", group_id)
        channel = body.get("channel", "stable")
        if not isinstance(track, str) or not track or self.group_for_track(track) is not None:
            raise CatalogError(409, f"track {track!r} is invalid or used by another group")
        if channel not in self.channels:
            raise CatalogError(404, f"no channel {channel!r}")
        try:
            policy = Policy().updated(body.get("policy") or {})
        except PolicyError as exc:
            raise CatalogError(400, str(exc)) from exc
        group = Group(group_id, str(body.get("name") or group_id), track, channel, policy)
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
