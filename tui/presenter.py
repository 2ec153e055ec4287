"""`Presenter`: what each panel of the dashboard shows, built from the `FleetModel`. Plain Python
(no Textual; tests/tui/test_presenter.py checks it imports none): the app hands the results to the
widgets, so what is shown can be tested without a screen.

    presenter = Presenter(model, cluster="http://127.0.0.1:2379", read_only=False)
    rows = presenter.rows(table.rows, table.row_index, changed, full=False)   # the node table
    panels = presenter.panels(shown=len(rows), frozen=False, loading=0, full=False)
    header.show(panels.header); if panels.locks is not None: lock_panel.show(panels.locks, ...)

Panels that are costly or rarely change come back as None when they need no repaint: the channel
bar (it scans every row) at most once a second unless the channels changed, the lock panel when
the locks changed, the event log with only the entries added since the last call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from coreroll.watch.detail import NodeDetail, node_detail
from coreroll.watch.model import FleetModel
from coreroll.watch.views import ActivityEntry, ChannelView, HeaderInfo, LockGroupView, ServerGroupView
from tui.rows import RowView


@dataclass(frozen=True)
class Panels:
    """One repaint's worth of panel data; None (or empty) = that panel stays as it is."""

    header: HeaderInfo
    now: float
    channels: tuple[Sequence[ChannelView], Sequence[ServerGroupView]] | None = None
    locks: Sequence[LockGroupView] | None = None
    activity: Sequence[ActivityEntry] = ()


class Presenter:
    CHANNELS_EVERY = 1.0  # seconds between channel bar rescans while the channels stay the same

    def __init__(
        self,
        model: FleetModel,
        *,
        cluster: str = "",
        read_only: bool = False,
        sources_configured: Sequence[str] = ("etcd", "server"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.model = model
        self.cluster = cluster
        self.read_only = read_only
        self.session = ""  # shown in the header ("browser: admin"); set by a served session
        self.sources_configured = tuple(sources_configured)
        self.clock = clock
        self.view = RowView("machine", False)
        self._activity_seq = 0
        self._locks_version = -1
        self._channels_version = -1
        self._channels_at = 0.0

    def rows(self, shown: Sequence[Any], index: dict[str, int], changed: set[str], full: bool) -> list[Any]:
        """The node table's rows: the model's, filtered and sorted (see `tui.rows.RowView`)."""
        return self.view.rows(self.model, shown, index, changed, full)

    def header(self, *, shown: int, frozen: bool, loading: int, now: float | None = None) -> HeaderInfo:
        model = self.model
        return HeaderInfo(
            cluster=self.cluster,
            etcd=model.connections.get("etcd") if "etcd" in self.sources_configured else None,
            server=model.connections.get("server") if "server" in self.sources_configured else None,
            counts=model.counts(),
            total=len(model.rows),
            shown=shown,
            last_update=model.last_change_at,
            read_only=self.read_only,
            frozen=frozen,
            loading=loading,
            now=self.clock() if now is None else now,
            session=self.session,
            lock_apis_watched=model.lock_apis_watched if "etcd" in self.sources_configured else frozenset(),
            lock_apis_holding=model.locks.apis_holding,
        )

    def panels(self, *, shown: int, frozen: bool, loading: int, full: bool) -> Panels:
        model = self.model
        now = self.clock()
        channels = locks = None
        if (
            full
            or model.channels_version != self._channels_version
            or now - self._channels_at >= self.CHANNELS_EVERY
        ):
            self._channels_version = model.channels_version
            self._channels_at = now
            channels = (model.channels(), model.groups())
        if full or model.locks_version != self._locks_version:
            self._locks_version = model.locks_version
            locks = model.lock_groups()
        activity: list[ActivityEntry] = []
        if model.activity_seq != self._activity_seq:
            activity = [entry for _, entry in model.activity_after(self._activity_seq)]
            self._activity_seq = model.activity_seq
        header = self.header(shown=shown, frozen=frozen, loading=loading, now=now)
        return Panels(header, now, channels, locks, activity)

    def held_locks(self) -> Sequence[LockGroupView] | None:
        """The lock groups when some lock is held (their ages move every second), else None."""
        groups = self.model.lock_groups()
        return groups if any(g.holders for g in groups) else None

    def stale_sources(self) -> tuple[str, ...]:
        return tuple(s for s in self.sources_configured if self.model.is_stale(s))

    def node_detail(self, machine_id: str) -> NodeDetail | None:
        """The detail page's data for `machine_id`; None once the fleet no longer knows it."""
        row = self.model.get(machine_id)
        return node_detail(row) if row is not None else None
