"""How the dashboard takes in what the sources deliver: `split_update` cuts the first listing of a
big fleet into a small snapshot plus smaller updates with the same end state, so the update pump
(`coreroll.watch.pump`) can apply it in time slices and paint the first rows at once instead of
staying blank while 100,000 status documents are parsed. The etcd listing's rest goes in
`NodeBatch`es of `chunk // 4` nodes: each row is built once from its status and alive key
(as single updates it was built twice), and a batch is short enough not to hold up a key.
`split_updates` does that for a whole drained batch, and when both first listings (etcd's and
the server's) arrive together it cuts them together: each node's server instance rides in its
NodeBatch, so its row is built once, not once per source.

Resyncs (the model already has rows from that source) stay whole: a snapshot removes what it does
not list, and rows must not blink out while the rest is read in.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from coreroll.watch.model import FleetModel
from coreroll.watch.parse import instance_id
from coreroll.watch.updates import (
    Connection,
    EtcdSnapshot,
    FeedEvent,
    FeedSnapshot,
    NodeAlive,
    NodeBatch,
    Update,
)


def split_updates(batch: list[Update], model: FleetModel, chunk: int) -> list[Update]:
    """`split_update` of each update in turn, or of both first listings together (see above)."""
    pair = _first_listings_together(batch, model, chunk)
    if pair is None:
        return [piece for update in batch for piece in split_update(update, model, chunk)]
    i, j = pair
    etcd, feed = batch[i], batch[j]
    assert isinstance(etcd, EtcdSnapshot) and isinstance(feed, FeedSnapshot)
    at = max(i, j)  # where the later of the two was: nothing between them but connection news
    rest = [update for k, update in enumerate(batch) if k not in (i, j)]
    before = [piece for update in rest[: at - 1] for piece in split_update(update, model, chunk)]
    after = [piece for update in rest[at - 1 :] for piece in split_update(update, model, chunk)]
    return [*before, *_split_together(etcd, feed, chunk), *after]


def _first_listings_together(batch: list[Update], model: FleetModel, chunk: int) -> tuple[int, int] | None:
    """Where the big first etcd listing and the big first server listing are, if both are in
    `batch` with nothing but Connection updates between them."""
    etcd = [k for k, x in enumerate(batch) if isinstance(x, EtcdSnapshot) and len(x.statuses) > chunk]
    feed = [k for k, x in enumerate(batch) if isinstance(x, FeedSnapshot) and len(x.instances) > chunk]
    if len(etcd) != 1 or len(feed) != 1:
        return None
    i, j = etcd[0], feed[0]
    if not all(isinstance(x, Connection) for x in batch[min(i, j) + 1 : max(i, j)]):
        return None
    if any(row.in_etcd or row.in_server for row in model.rows.values()):
        return None  # a resync: stays whole
    return i, j


def _split_together(etcd: EtcdSnapshot, feed: FeedSnapshot, chunk: int) -> list[Update]:
    instances: dict[str, dict[str, Any]] = {}
    for data in feed.instances:
        mid = instance_id(data)
        if mid is not None:
            instances[mid] = data  # the last one wins, as in FleetModel
    head = etcd.statuses[:chunk]
    first = {status.machine_id for status in head}
    pieces: list[Update] = [
        replace(etcd, statuses=head, alive=etcd.alive & first),
        replace(feed, instances=tuple(instances.pop(mid) for mid in first if mid in instances)),
    ]
    step = max(chunk // 4, 1)
    listed = set(first)
    for start in range(chunk, len(etcd.statuses), step):
        part = etcd.statuses[start : start + step]
        ids = {status.machine_id for status in part}
        listed |= ids
        own = tuple(instances.pop(mid) for mid in ids if mid in instances)
        pieces.append(NodeBatch(part, etcd.alive & ids, own))
    pieces += [FeedEvent("instance", None, data) for data in instances.values()]  # server-only nodes
    pieces += [NodeAlive(mid, True) for mid in etcd.alive if mid not in listed]
    return pieces


def split_update(update: Update, model: FleetModel, chunk: int) -> list[Update]:
    if isinstance(update, EtcdSnapshot) and len(update.statuses) > chunk:
        if any(row.in_etcd for row in model.rows.values()):
            return [update]
        head, rest = update.statuses[:chunk], update.statuses[chunk:]
        listed = {status.machine_id for status in update.statuses}
        first = {status.machine_id for status in head}
        step = max(chunk // 4, 1)
        batches = [
            NodeBatch(part, update.alive & {status.machine_id for status in part})
            for part in (rest[i : i + step] for i in range(0, len(rest), step))
        ]
        alive_only = [NodeAlive(mid, True) for mid in update.alive if mid not in listed]
        return [replace(update, statuses=head, alive=update.alive & first), *batches, *alive_only]
    if isinstance(update, FeedSnapshot) and len(update.instances) > chunk:
        if any(row.in_server for row in model.rows.values()):
            return [update]
        head_i, rest_i = update.instances[:chunk], update.instances[chunk:]
        return [replace(update, instances=head_i), *(FeedEvent("instance", None, i) for i in rest_i)]
    return [update]
