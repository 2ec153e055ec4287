"""Rollout progress per channel and per server group: how far the fleet has got to the version
each channel offers (pure; one pass over the rows per model version)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from coreroll.watch.merge import ACTIVE_STATES
from coreroll.watch.parse import opt_str, opt_time
from coreroll.watch.query import version_at_least
from coreroll.watch.views import (
    STATE_ERROR,
    STATE_ONHOLD,
    STATE_UNREADABLE,
    ChannelView,
    NodeRow,
    RolloutProgress,
    ServerGroupView,
)


class RowIndex(NamedTuple):
    by_channel: dict[str | None, list[NodeRow]]
    by_group: dict[str, list[NodeRow]]  # rows the server placed in a group
    ungrouped: dict[str | None, list[NodeRow]]  # rows with no server group, by channel


def index_rows(rows: Iterable[NodeRow]) -> RowIndex:
    index = RowIndex({}, {}, {})
    for row in rows:
        channel = row.channel
        index.by_channel.setdefault(channel, []).append(row)
        group = row.group
        if group is None:
            index.ungrouped.setdefault(channel, []).append(row)
        else:
            index.by_group.setdefault(group, []).append(row)
    return index


def rollout(name: str, version: str | None, rows: Iterable[NodeRow]) -> RolloutProgress:
    total = done = updating = failed = on_hold = 0
    for row in rows:
        total += 1
        if version_at_least(row.version, version):
            done += 1
        elif row.state in ACTIVE_STATES:
            updating += 1
        elif row.state in (STATE_ERROR, STATE_UNREADABLE):
            failed += 1
        elif row.state == STATE_ONHOLD:
            on_hold += 1
    return RolloutProgress(name, version, total, done, updating, failed, on_hold)


def channel_view(name: str, data: Mapping[str, Any], index: RowIndex) -> ChannelView:
    version = opt_str(data, "version")
    rows = index.by_channel.get(name, ())
    return ChannelView(name, version, opt_time(data, "updated_at"), rollout(name, version, rows))


def group_view(
    group_id: str, data: Mapping[str, Any], index: RowIndex, version_of: Callable[[str | None], str | None]
) -> ServerGroupView:
    """A server group; its progress counts the nodes the server placed in it plus the nodes the
    server does not know (etcd only) on the group's track."""
    policy = data.get("policy") if isinstance(data.get("policy"), dict) else {}
    assert isinstance(policy, dict)
    track = opt_str(data, "track")
    channel = opt_str(data, "channel") or track
    rows = index.by_group.get(group_id, []) + (index.ungrouped.get(track, []) if track is not None else [])
    return ServerGroupView(
        id=group_id,
        name=opt_str(data, "name") or group_id,
        track=track,
        channel=channel,
        updates_enabled=bool(policy.get("updates_enabled", True)),
        policy=dict(policy),
        rollout_in_progress=bool(data.get("rollout_in_progress")),
        halted_reason=opt_str(data, "halted_reason"),
        progress=rollout(group_id, version_of(channel), rows),
    )
