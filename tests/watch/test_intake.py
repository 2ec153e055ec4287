"""Cutting big first listings into pieces: the pieces must end in the state the whole gives."""

from __future__ import annotations

from dataclasses import replace

from coreroll.watch.intake import split_updates
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import Connection, FeedEvent, FeedSnapshot, NodeBatch, Update
from tui.sample import machine_id, sample_updates


def row_facts(model: FleetModel) -> dict[str, tuple[object, ...]]:
    return {
        mid: (r.online, r.state, r.hostname, r.version, r.group, r.ip, r.server_status, r.search_text)
        for mid, r in model.rows.items()
    }


def whole_and_pieces(fleet: list[Update]) -> tuple[FleetModel, FleetModel, list[Update]]:
    whole, cut = FleetModel(), FleetModel()
    whole.apply_many(fleet)
    pieces = split_updates(fleet, cut, 100)
    cut.apply_many(pieces)
    return whole, cut, pieces


def test_both_first_listings_together_build_each_row_once_and_end_the_same() -> None:
    fleet = sample_updates(450)
    feed = next(x for x in fleet if isinstance(x, FeedSnapshot))
    server_only = {"machine_id": machine_id(9000), "ip": "10.9.9.9", "status": "Complete"}
    fleet = [replace(x, instances=(*feed.instances, server_only)) if x is feed else x for x in fleet]
    whole, cut, pieces = whole_and_pieces(fleet)
    batches = [p for p in pieces if isinstance(p, NodeBatch)]
    # each node's instance rides with its status
    assert sum(len(b.instances) for b in batches) > 150  # (the sample server knows half the fleet)
    assert all(i["machine_id"] in {s.machine_id for s in b.statuses} for b in batches for i in b.instances)
    assert [p.data["machine_id"] for p in pieces if isinstance(p, FeedEvent)] == [machine_id(9000)]
    assert row_facts(cut) == row_facts(whole) and len(cut.rows) == 451
    assert cut.rows[machine_id(9000)].ip == "10.9.9.9"


def test_listings_apart_are_cut_apart() -> None:
    fleet = sample_updates(450)
    feed_at = next(i for i, x in enumerate(fleet) if isinstance(x, FeedSnapshot))
    # a server event between the two listings: they are not cut together
    event = FeedEvent("instance", "7", {"machine_id": machine_id(3), "status": "OnHold"})
    fleet = [*fleet[:feed_at], event, *fleet[feed_at:]] if feed_at else fleet
    fleet.insert(0, Connection("etcd", "connected"))
    whole, cut, pieces = whole_and_pieces(fleet)
    assert not any(isinstance(p, NodeBatch) and p.instances for p in pieces)
    assert row_facts(cut) == row_facts(whole)
