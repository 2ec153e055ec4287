"""A deterministic sample fleet, as the sources would deliver it, for snapshot tests, the benchmark
and screenshots (no I/O: a list of `coreroll.watch.updates` messages).

- `status_json(machine_id, **fields) -> bytes`: a node status report as the agent writes it.
- `sample_updates(n, seed=0, now=...) -> list[Update]`: one `EtcdSnapshot` with `n` nodes over three
  channels, alive keys, one lock group with a stale holder, plus a `FeedSnapshot` (channels, groups,
  instances, activity) and both sources connected.
- `status_change(machine_id, i, now) -> NodeStatus`: the i-th change of one node (for load).
"""

from __future__ import annotations

import json
import random
from typing import Any

from coreroll.watch import updates as u
from coreroll.wire.keys import LOCK_DEFAULT_KEY, lock_group_key, status_key
from coreroll.wire.status import sample_document

CHANNELS = {"alpha": "4230.0.0", "beta": "4186.1.0", "stable": "4152.2.3"}
OLD = {"alpha": "4202.0.0", "beta": "4152.2.0", "stable": "4081.2.1"}
STATUSES = (
    ["UPDATE_STATUS_IDLE"] * 12
    + ["UPDATE_STATUS_DOWNLOADING"] * 3
    + ["UPDATE_STATUS_UPDATED_NEED_REBOOT"] * 2
    + ["UPDATE_STATUS_REPORTING_ERROR_EVENT", "UPDATE_STATUS_CHECKING_FOR_UPDATE", "UPDATE_STATUS_VERIFYING"]
)
STATUS_KEY = status_key("{}")  # a format string: STATUS_KEY.format(machine_id)
NOW = 1_790_000_000.0  # a fixed instant (2026-09-21) so screenshots and snapshots do not drift


def machine_id(i: int) -> str:
    """A 32-hex-digit machine id, distinct per i and stable across runs."""
    return f"{(i * 2654435761) % (1 << 32):08x}{i:08x}" + "c0ffee00d15ea5e0"


def hostname(mid: str) -> str:
    """node-NNNN for the sample's machine ids; the id's start for any other id."""
    try:
        return f"node-{int(mid[8:16], 16):04d}"
    except ValueError:
        return f"node-{mid[:8]}"


def status_json(mid: str, **fields: Any) -> bytes:
    channel = fields.get("channel", "stable")
    version = fields.get("version", CHANNELS.get(channel, "4152.2.3"))
    active = fields.get("active_partition", "USR-A")
    other = "USR-B" if active == "USR-A" else "USR-A"
    doc = sample_document(
        mid,
        hostname=fields["hostname"] if "hostname" in fields else hostname(mid),
        channel=channel,
        version=version,
        active_partition=active,
        partitions=[
            {"label": active, "version": version, "priority": 2, "tries": 0, "successful": 1},
            {
                "label": other,
                "version": fields.get("other_version", OLD.get(channel)),
                "priority": 1,
                "tries": 0,
                "successful": 0,
            },
        ],
        status=fields.get("status", "UPDATE_STATUS_IDLE"),
        progress=fields.get("progress", 0.0),
        new_version=fields.get("new_version", "0.0.0.0"),
        new_size=fields.get("new_size", 0),
        last_checked_time=fields.get("last_checked_time", int(NOW) - 60),
        lock_group=fields.get("lock_group", ""),
        holds_lock=fields.get("holds_lock", False),
        boot_id=fields.get("boot_id", f"b00t{mid[:8]}"),
        booted_at=fields.get("booted_at", NOW - 86400),
        reported_at=fields.get("reported_at", NOW - 5),
    )
    return json.dumps(doc).encode()


def _node(i: int, rng: random.Random, now: float) -> tuple[str, bytes, str, str]:
    mid = machine_id(i)
    channel = rng.choice(["stable", "stable", "stable", "beta", "alpha"])
    status = rng.choice(STATUSES)
    done = status == "UPDATE_STATUS_IDLE" and rng.random() < 0.6
    version = CHANNELS[channel] if done else OLD[channel]
    fields: dict[str, Any] = {
        "channel": channel,
        "version": version,
        "status": status,
        "active_partition": "USR-B" if done else "USR-A",
        "other_version": OLD[channel] if done else None,
        "last_checked_time": int(now) - rng.randint(5, 3000),
        # the offline ones (see sample_updates) went quiet an hour ago: past any reboot's grace
        "reported_at": now - 3600 if i % 17 == 5 else now - 5,
    }
    if status == "UPDATE_STATUS_DOWNLOADING":
        fields["progress"] = round(rng.random(), 2)
        fields["new_version"] = CHANNELS[channel]
    return mid, status_json(mid, **fields), channel, version


def sample_updates(n: int = 40, seed: int = 0, now: float = NOW) -> list[u.Update]:
    rng = random.Random(seed)
    statuses = []
    alive = set()
    known: list[tuple[str, str, str]] = []
    for i in range(n):
        mid, raw, channel, version = _node(i, rng, now)
        known.append((mid, channel, version))
        statuses.append(u.NodeStatus(mid, STATUS_KEY.format(mid), raw))
        if i % 17 != 5:  # a few offline nodes
            alive.add(mid)
    holders = (machine_id(2), machine_id(5)) if n > 5 else ()
    locks = (
        u.LockState("", "v3", LOCK_DEFAULT_KEY, 0, 2, tuple(sorted(holders))),
        u.LockState("workers", "v3", lock_group_key("workers"), 1, 1, ()),
    )
    snapshot = u.EtcdSnapshot(
        revision=1,
        statuses=tuple(statuses),
        alive=frozenset(alive),
        locks=locks,
    )
    iso = "2026-09-21T13:00:00Z"
    channels = tuple({"name": k, "version": v, "updated_at": iso} for k, v in CHANNELS.items())
    groups = tuple(
        {
            "id": k,
            "name": k,
            "track": k,
            "channel": k,
            "policy": {"updates_enabled": k != "alpha", "max_concurrent": 5},
            "rollout_in_progress": k == "stable",
            "halted_reason": None,
        }
        for k in CHANNELS
    )
    activity = (
        {"id": 1, "at": iso, "kind": "ChannelUpdated", "severity": "info", "channel": "stable",
         "version": CHANNELS["stable"], "message": f"stable now offers {CHANNELS['stable']}"},
        {"id": 2, "at": "2026-09-21T13:01:00Z", "kind": "RolloutStarted", "severity": "info",
         "group": "stable", "message": "rollout of 4152.2.3 started in group stable"},
        {"id": 3, "at": "2026-09-21T13:05:00Z", "kind": "InstanceUpdateFailed", "severity": "error",
         "group": "stable", "instance": machine_id(3), "message": f"{machine_id(3)[:8]}: 3/0 errorcode 10 (PayloadHashMismatch)"},
    )  # fmt: skip
    server_statuses = ("Complete", "Downloading", "OnHold", "UpdateGranted", "Error", "Undefined")
    instances = tuple(
        {
            "machine_id": known[i][0],
            "ip": f"10.0.{i // 250}.{i % 250 + 1}",
            "version": known[i][2],
            "track": known[i][1],
            "group": known[i][1],
            "status": server_statuses[i % len(server_statuses)],
            "last_check": iso,
        }
        for i in range(0, n, 2)  # the server knows every other node (the rest never checked in)
    )
    feed = u.FeedSnapshot(
        channels=channels, groups=groups, instances=instances, activity=activity, last_id="3"
    )
    return [
        u.Connection("etcd", "connected", "", now),
        u.Connection("server", "connected", "", now),
        snapshot,
        feed,
    ]


def status_change(i: int, step: int, now: float) -> u.NodeStatus:
    """The `step`-th status report of node `i`: progress moves, status cycles."""
    mid = machine_id(i)
    status = STATUSES[(i + step) % len(STATUSES)]
    raw = status_json(
        mid,
        status=status,
        progress=(step % 100) / 100,
        reported_at=now,
        last_checked_time=int(now),
    )
    return u.NodeStatus(mid, STATUS_KEY.format(mid), raw)
