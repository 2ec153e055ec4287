"""The reboot-lock state the dashboard knows: every semaphore (locksmith v3/v2, airlock), who holds
what, and since when we have seen them holding (etcd keeps no timestamps).

A semaphore is known by its `LockRef`, (kind, group): the same group name may exist in the v2 and
the v3 keyspace at once (two separate semaphores; the panel marks them v2/v3)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from coreroll.watch import updates as u
from coreroll.watch.merge import holder_view
from coreroll.watch.views import LockGroupView, NodeRow

LockRef = tuple[str, str]  # (kind, group)
LOCKSMITH_APIS = frozenset({"v2", "v3"})


def ident_name(kind: str, group: str) -> str:
    """LockGroupView.ident: the group for locksmith (v2 or v3), `airlock/<group>` for airlock."""
    return f"airlock/{group}" if kind == "airlock" else group


class LockBook:
    def __init__(self) -> None:
        self.locks: dict[LockRef, u.LockState] = {}
        self.held_by: dict[str, set[LockRef]] = {}  # machine id -> the groups it holds
        self._since: dict[tuple[LockRef, str], tuple[float, bool]] = {}  # (ref, holder) -> (when, exact)

    @property
    def known(self) -> bool:
        """Whether any lock state is known (else a node's own `holds_lock` is all we have)."""
        return bool(self.locks)

    @property
    def apis_holding(self) -> frozenset[str]:
        """The locksmith APIs ("v2", "v3") with at least one semaphore."""
        return frozenset(kind for kind, _ in self.locks) & LOCKSMITH_APIS

    def held_idents(self, machine_id: str) -> set[str] | None:
        """NodeRow.lock_groups_held: the idents of the groups `machine_id` holds (None: none)."""
        refs = self.held_by.get(machine_id)
        return {ident_name(*ref) for ref in refs} if refs else None

    def apply(self, update: u.LockState, now: float, *, first_sight: bool = False) -> tuple[bool, set[str]]:
        """Record a group's new state. Returns (whether the group changed, the machine ids that
        started or stopped holding it). `first_sight`: from a listing, so holders' start is unknown."""
        ident = (update.kind, update.group)
        old = self.locks.get(ident)
        old_holders = set(old.holders) if old else set()
        if update.removed:
            self.locks.pop(ident, None)
            new_holders: set[str] = set()
        elif update.error and old is not None:
            # unreadable now: keep the last readable holders listed, with the error shown
            self.locks[ident] = u.LockState(
                update.group, update.kind, update.key, old.available, old.max, old.holders, update.error
            )
            new_holders = old_holders
        else:
            self.locks[ident] = update
            new_holders = set(update.holders)
        exact = not first_sight  # a listing cannot tell when a holder took the lock
        for holder in new_holders - old_holders:
            self._since[(ident, holder)] = (now, exact)
            self.held_by.setdefault(holder, set()).add(ident)
        for holder in old_holders - new_holders:
            self._since.pop((ident, holder), None)
            groups = self.held_by.get(holder)
            if groups is not None:
                groups.discard(ident)
                if not groups:
                    del self.held_by[holder]
        return old != self.locks.get(ident), new_holders ^ old_holders

    def replace(
        self, locks: Iterable[u.LockState], kinds: frozenset[str], now: float
    ) -> tuple[bool, set[str]]:
        """A full listing of `kinds`: groups of those kinds not in it have vanished."""
        changed, touched = False, set()
        seen: set[LockRef] = set()
        gone = [u.LockState(lock.group, lock.kind, lock.key, removed=True) for lock in self.locks.values()]
        for lock in locks:
            seen.add((lock.kind, lock.group))
            moved, holders = self.apply(lock, now, first_sight=True)
            changed, touched = changed or moved, touched | holders
        for lock in gone:
            if lock.kind in kinds and (lock.kind, lock.group) not in seen:
                moved, holders = self.apply(lock, now, first_sight=True)
                changed, touched = changed or moved, touched | holders
        return changed, touched

    def views(
        self,
        row_of: Callable[[str], NodeRow | None],
        now: float,
        stale_after: float,
        *,
        offline_since: Callable[[str], tuple[float, bool] | None] = lambda mid: None,
        offline_grace: float = 0.0,
    ) -> list[LockGroupView]:
        """Every group, holders flagged stale (offline past the grace, unknown to the fleet, or
        held too long). `offline_since(mid)` -> (when, exact) for nodes that are offline."""
        views: list[LockGroupView] = []
        # by name, then kind: a group in both keyspaces shows as two neighbouring entries
        for ident, lock in sorted(self.locks.items(), key=lambda item: (ident_name(*item[0]), item[0][0])):
            holders = tuple(
                holder_view(
                    h,
                    self._since.get((ident, h)),
                    row_of(h),
                    now,
                    stale_after,
                    offline=offline_since(h),
                    offline_grace=offline_grace,
                )
                for h in lock.holders
            )
            views.append(
                LockGroupView(lock.group, lock.kind, lock.key, lock.available, lock.max, holders, lock.error)
            )
        return views
