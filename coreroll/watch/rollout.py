"""Rollout progress per channel and per server group: how far the fleet has got to the version
each channel offers (pure; tallied row by row as the model changes, see RolloutIndex)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from coreroll.watch.merge import ACTIVE_STATES
from coreroll.watch.parse import opt_str, opt_time
from coreroll.watch.query import version_at_least
from coreroll.watch.views import (
    STATE_ERROR,
    STATE_ONHOLD,
    STATE_UNREADABLE,
    STATES,
    ChannelView,
    NodeRow,
    RolloutProgress,
    ServerGroupView,
)

# what a row counts as in a rollout, besides its version
_OTHER, _ACTIVE, _FAILED, _ON_HOLD = range(4)

Tally = dict[tuple[str | None, int], int]
"""(version, category) -> number of rows."""


def _category(state: str) -> int:
    if state in ACTIVE_STATES:
        return _ACTIVE
    if state in (STATE_ERROR, STATE_UNREADABLE):
        return _FAILED
    return _ON_HOLD if state == STATE_ONHOLD else _OTHER


_CATEGORY = {state: _category(state) for state in STATES}  # (looked up for every row change)


class RolloutIndex:
    """Rows tallied by channel and by server group, kept up to date one row at a time
    (FleetModel calls `update` for every row it replaces), so a channel's or group's progress
    costs O(distinct versions) instead of a pass over every row (10k rows: ~35 ms per repaint of
    the channel bar before)."""

    def __init__(self) -> None:
        self.by_channel: dict[str | None, Tally] = {}
        self.by_group: dict[str, Tally] = {}  # rows the server placed in a group
        self.ungrouped: dict[str | None, Tally] = {}  # rows with no server group, by channel
        self._keys: dict[str, tuple[str | None, str | None, str | None, int]] = {}

    def update(self, machine_id: str, row: NodeRow | None) -> None:
        """`row` is the machine's new row (None: gone)."""
        key = None if row is None else (row.channel, row.group, row.version, _CATEGORY[row.state])
        old = self._keys.get(machine_id)
        if old == key:
            return
        if old is not None:
            self._count(old, -1)
        if key is None:
            del self._keys[machine_id]
        else:
            self._keys[machine_id] = key
            self._count(key, 1)

    def _count(self, key: tuple[str | None, str | None, str | None, int], delta: int) -> None:
        channel, group, version, category = key
        bucket = (version, category)
        _bump(self.by_channel, channel, bucket, delta)
        if group is None:
            _bump(self.ungrouped, channel, bucket, delta)
        else:
            _bump(self.by_group, group, bucket, delta)


def _bump(table: dict[Any, Tally], name: Any, bucket: tuple[str | None, int], delta: int) -> None:
    tally = table.get(name)
    if tally is None:
        tally = table[name] = {}
    count = tally.get(bucket, 0) + delta
    if count:
        tally[bucket] = count
        return
    del tally[bucket]
    if not tally:
        del table[name]


def tally_rows(rows: Iterable[NodeRow]) -> Tally:
    tally: Tally = {}
    for row in rows:
        bucket = (row.version, _category(row.state))
        tally[bucket] = tally.get(bucket, 0) + 1
    return tally


def progress(name: str, version: str | None, tallies: Iterable[Tally]) -> RolloutProgress:
    total = done = updating = failed = on_hold = 0
    for tally in tallies:
        for (row_version, category), count in tally.items():
            total += count
            if version_at_least(row_version, version):
                done += count
            elif category == _ACTIVE:
                updating += count
            elif category == _FAILED:
                failed += count
            elif category == _ON_HOLD:
                on_hold += count
    return RolloutProgress(name, version, total, done, updating, failed, on_hold)


def rollout(name: str, version: str | None, rows: Iterable[NodeRow]) -> RolloutProgress:
    """Progress of `rows` towards `version` (done = on it or newer)."""
    return progress(name, version, [tally_rows(rows)])


def channel_view(name: str, data: Mapping[str, Any], index: RolloutIndex) -> ChannelView:
    version = opt_str(data, "version")
    tallies = [index.by_channel.get(name, {})]
    return ChannelView(name, version, opt_time(data, "updated_at"), progress(name, version, tallies))


def group_view(
    group_id: str,
    data: Mapping[str, Any],
    index: RolloutIndex,
    version_of: Callable[[str | None], str | None],
) -> ServerGroupView:
    """A server group; its progress counts the nodes the server placed in it plus the nodes the
    server does not know (etcd only) on the group's track."""
    policy = data.get("policy") if isinstance(data.get("policy"), dict) else {}
    assert isinstance(policy, dict)
    track = opt_str(data, "track")
    channel = opt_str(data, "channel") or track
    tallies = [index.by_group.get(group_id, {}), index.ungrouped.get(track, {}) if track is not None else {}]
    return ServerGroupView(
        id=group_id,
        name=opt_str(data, "name") or group_id,
        track=track,
        channel=channel,
        updates_enabled=bool(policy.get("updates_enabled", True)),
        policy=dict(policy),
        rollout_in_progress=bool(data.get("rollout_in_progress")),
        halted_reason=opt_str(data, "halted_reason"),
        progress=progress(group_id, version_of(channel), tallies),
    )
