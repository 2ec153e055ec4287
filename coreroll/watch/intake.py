"""How the dashboard takes in what the sources deliver: `split_update` cuts the first listing of a
big fleet into a small snapshot plus smaller updates with the same end state, so the update pump
(`coreroll.watch.pump`) can apply it in time slices and paint the first rows at once instead of
staying blank while 100,000 status documents are parsed. The etcd listing's rest goes in
`NodeBatch`es of `chunk // 4` nodes: each row is built once from its status and alive key
(as single updates it was built twice), and a batch is short enough not to hold up a key.

Resyncs (the model already has rows from that source) stay whole: a snapshot removes what it does
not list, and rows must not blink out while the rest is read in.
"""

from __future__ import annotations

from dataclasses import replace

from coreroll.watch.model import FleetModel
from coreroll.watch.updates import EtcdSnapshot, FeedEvent, FeedSnapshot, NodeAlive, NodeBatch, Update


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
