"""The reboot-lock state the dashboard knows: every semaphore (locksmith v3/v2, airlock), who holds
what, and since when we have seen them holding (etcd keeps no timestamps)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from coreroll.watch import updates as u
from coreroll.watch.merge import holder_view
from coreroll.watch.views import LockGroupView, NodeRow


def ident_of(lock: u.LockState) -> str:
    """LockGroupView.ident: the group for locksmith, `airlock/<group>` for airlock."""
    return f"airlock/{lock.group}" if lock.kind == "airlock" else lock.group


class LockBook:
    def __init__(self) -> None:
        self.locks: dict[str, u.LockState] = {}
        self.held_by: dict[str, set[str]] = {}  # machine id -> idents of the groups it holds
        self._since: dict[tuple[str, str], tuple[float, bool]] = {}  # (ident, holder) -> (when, exact)

    @property
    def known(self) -> bool:
        """Whether any lock state is known (else a node's own `holds_lock` is all we have)."""
        return bool(self.locks)

    def apply(self, update: u.LockState, now: float, *, first_sight: bool = False) -> tuple[bool, set[str]]:
        """Record a group's new state. Returns (whether the group changed, the machine ids that
        started or stopped holding it). `first_sight`: from a listing, so holders' start is unknown."""
        ident = ident_of(update)
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
        seen: set[str] = set()
        gone = [u.LockState(lock.group, lock.kind, lock.key, removed=True) for lock in self.locks.values()]
        for lock in locks:
            seen.add(ident_of(lock))
            moved, holders = self.apply(lock, now, first_sight=True)
            changed, touched = changed or moved, touched | holders
        for lock in gone:
            if lock.kind in kinds and ident_of(lock) not in seen:
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
        for ident, lock in sorted(self.locks.items()):
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
