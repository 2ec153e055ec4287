"""The presenter without a screen: what each panel would show, built from a real model."""

from __future__ import annotations

from coreroll.watch import updates as u
from coreroll.watch.model import FleetModel
from coreroll.wire.keys import LOCK_DEFAULT_KEY
from tui.presenter import Presenter
from tui.sample import NOW, machine_id, sample_updates


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def loaded(n: int = 40, **kwargs: object) -> tuple[Presenter, FleetModel, Clock]:
    clock = Clock()
    model = FleetModel(clock=clock)
    model.apply_many(sample_updates(n))
    return Presenter(model, clock=clock, **kwargs), model, clock  # type: ignore[arg-type]


def test_header_counts_the_fleet_and_names_the_flags() -> None:
    presenter, model, _ = loaded(40, cluster="http://127.0.0.1:2379", read_only=True)
    header = presenter.header(shown=12, frozen=True, loading=3)
    assert header.total == 40 and header.shown == 12 and sum(header.counts.values()) == 40
    assert header.read_only and header.frozen and header.loading == 3
    assert header.cluster == "http://127.0.0.1:2379" and header.now == NOW
    only_etcd = Presenter(model, sources_configured=("etcd",)).header(shown=0, frozen=False, loading=0)
    assert only_etcd.server is None  # a source not configured is not shown as down


def test_costly_panels_come_back_only_when_they_changed() -> None:
    presenter, model, clock = loaded(40)
    first = presenter.panels(shown=40, frozen=False, loading=0, full=False)
    assert first.channels is not None and first.locks is not None and first.activity
    again = presenter.panels(shown=40, frozen=False, loading=0, full=False)
    assert again.channels is None and again.locks is None and not again.activity

    model.apply(u.LockState("", "v3", LOCK_DEFAULT_KEY, 1, 2, (machine_id(3),)))
    changed = presenter.panels(shown=40, frozen=False, loading=0, full=False)
    assert changed.locks is not None and changed.channels is None
    assert [h.machine_id for h in changed.locks[0].holders] == [machine_id(3)]

    clock.now += presenter.CHANNELS_EVERY  # progress bars rescan once a second anyway
    assert presenter.panels(shown=40, frozen=False, loading=0, full=False).channels is not None
    full = presenter.panels(shown=40, frozen=False, loading=0, full=True)
    assert full.channels is not None and full.locks is not None

    model.note("hello from the dashboard")
    assert [e.message for e in presenter.panels(shown=40, frozen=False, loading=0, full=False).activity] == [
        "hello from the dashboard"
    ]


def test_rows_follow_the_query_and_the_sort() -> None:
    presenter, model, _ = loaded(40)
    rows = presenter.rows([], {}, set(), full=True)
    assert len(rows) == 40
    presenter.view.set_query(machine_id(7), model)
    assert [r.machine_id for r in presenter.rows(rows, {}, set(), full=True)] == [machine_id(7)]


def test_held_locks_only_while_someone_holds_one() -> None:
    presenter, model, _ = loaded(40)  # the sample fleet has two holders
    assert presenter.held_locks() is not None
    empty = Presenter(FleetModel())
    assert empty.held_locks() is None
    holders = {h.machine_id: h for g in model.lock_groups() for h in g.holders}
    assert holders[machine_id(2)].hostname == model.rows[machine_id(2)].hostname  # each row names its host


def test_header_names_the_etcd_api_of_the_locks() -> None:
    from widgets.header import render_header

    presenter, model, _ = loaded(4)  # the sample's etcd listing covers v3 locks
    assert model.lock_apis_watched == {"v3"}
    assert render_header(presenter.header(shown=4, frozen=False, loading=0)).plain.endswith("locks: v3")
    auto = u.EtcdSnapshot(revision=2, lock_kinds=frozenset({"v2", "v3"}))
    model.apply(auto)  # --etcd-api auto: both watched, none holds a semaphore yet
    lines = [render_header(presenter.header(shown=4, frozen=False, loading=0)).plain]
    model.apply(u.LockState("", "v2", "/k", 1, 1))
    lines.append(render_header(presenter.header(shown=4, frozen=False, loading=0)).plain)
    model.apply(u.LockState("db", "v3", "k", 1, 1))
    lines.append(render_header(presenter.header(shown=4, frozen=False, loading=0)).plain)
    assert [line.rsplit("  ", 1)[-1] for line in lines] == [
        "locks: none yet (v2, v3 watched)",
        "locks: v2",
        "locks: v2+v3 BOTH hold semaphores",
    ]


def test_node_detail_places_each_reported_partition_on_flatcars_disk() -> None:
    """The detail page's cgpt table comes from the presenter: Flatcar's layout for USR-A/USR-B, and
    "-" (not a made-up sector) for a label the layout does not have."""
    from tests.watch.helpers import status_bytes
    from tui.screens.detail import cgpt_table

    model = FleetModel()
    parts = [
        {"label": "USR-A", "version": "4699.0.0", "priority": 2, "tries": 0, "successful": 1},
        {"label": "USR-\x1b[2J", "version": "1.0", "priority": 1, "tries": 1, "successful": 0},
    ]
    model.apply(u.NodeStatus("n1", "k", status_bytes("n1", partitions=parts)))
    presenter = Presenter(model)
    detail = presenter.node_detail("n1")
    assert detail is not None and detail.row.machine_id == "n1"
    usr_a, odd = detail.partitions
    assert (usr_a.number, usr_a.start, usr_a.size, usr_a.booted) == (3, 270336, 2097152, True)
    assert (odd.number, odd.start, odd.size, odd.booted) == (None, None, None, False)
    lines = cgpt_table(detail).splitlines()
    assert lines[1].split() == ["270336", "2097152", "3", "Label:", '"USR-A"', "(booted)"]
    assert lines[5].split()[:3] == ["-", "-", "-"] and "\x1b" not in lines[5]
    assert presenter.node_detail("nobody") is None
