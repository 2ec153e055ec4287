"""`LockPanel`: the reboot-lock groups: `available/max` per group and each holder with how long it
has held the lock; stale holders (offline past the model's grace, unknown to the fleet, or held too
long; the model decides) are marked `STALE` with the reason, and a holder offline for less than the
grace is shown `rebooting` (it holds the lock through its reboot, without its alive key). An
unreadable semaphore shows its error (naming the key). A group is marked with its kind when it is
not a v3 locksmith semaphore (`(v2)`, `(airlock)`), and every locksmith group is marked `(v2)` or
`(v3)` while semaphores of both APIs are shown.

It is an OptionList (with j/k/g/G, widgets.list_keys), so holders can be selected with the keyboard: `selected_group()` and
`selected_holder()` tell the app what `u` (unlock) and `m` (set max) act on, with the group's
kind (the etcd API its semaphore lives on); `group_held_by(machine_id)` is the first group a
machine holds. Option ids name (kind, group[, holder]). `show(groups, now)`
rebuilds the list only when something visible changed and keeps the highlight on the same option.
Group names, holders, hostnames and errors come from etcd: they are shown through
`coreroll.textsafe.visible` in `Text` (never markup); option ids keep the raw values the actions need.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from rich.text import Text
from textual.widgets.option_list import Option

from coreroll.textsafe import visible
from coreroll.watch.views import LockGroupView
from widgets.list_keys import NavOptionList


def option_id(*parts: str) -> str:
    """An option's id naming its group (and holder): JSON, so it splits back exactly whatever the
    names hold (a holder id from etcd may contain any separator we could pick)."""
    return json.dumps(parts)


def option_parts(ident: str | None) -> list[str]:
    """`option_id`'s parts; [] for an option that names no group."""
    try:
        parts = json.loads(ident or "")
    except ValueError:
        return []
    return parts if isinstance(parts, list) and all(isinstance(p, str) for p in parts) else []


def held_for(seconds: float | None, exact: bool) -> str:
    """How long a holder has held its lock, in minutes ("<1m", "12m", "2h05m"): coarse on purpose,
    so the panel changes at most once a minute per holder (each change costs a layout pass)."""
    if seconds is None:
        return "?"
    seconds = max(int(seconds), 0)
    if seconds < 60:
        text = "<1m" if exact else "0m"
    elif seconds < 3600:
        text = f"{seconds // 60}m"
    else:
        text = f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    # not exact: it already held the lock when the dashboard first looked, so at least this long
    return text if exact else f"≥{text}"


def group_options(groups: Sequence[LockGroupView], now: float) -> list[Option]:
    options: list[Option] = []
    both_apis = {"v2", "v3"} <= {group.kind for group in groups}
    for group in groups:
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(visible(group.display_name), style="bold")
        if group.kind != "v3" or both_apis:
            head.append(f" ({visible(group.kind)})", style="bold yellow" if both_apis else "dim")
        if group.error:
            head.append(f"  UNREADABLE: {visible(group.error)}", style="bold red")
        else:
            available = "-" if group.available is None else str(group.available)
            maximum = "-" if group.max is None else str(group.max)
            style = "bold red" if group.available is not None and group.available < 0 else ""
            head.append(f"  {available}/{maximum} free", style=style)
            if group.stale_holders:
                head.append(f"  {len(group.stale_holders)} stale", style="bold red")
        options.append(Option(head, id=option_id("g", *group.ref)))
        for holder in group.holders:
            line = Text("  ", no_wrap=True, overflow="ellipsis")
            host = holder.hostname
            line.append(visible(holder.display_name), style="bold red" if holder.stale else "bold")
            since = None if holder.since is None else now - holder.since
            line.append(f"  {held_for(since, holder.since_exact)}")
            if holder.stale:
                line.append(f"  STALE: {holder.stale_reason or 'stale'}", style="bold red")
            elif holder.rebooting:  # offline within the model's grace: a reboot holds the lock
                line.append("  rebooting", style="yellow")
            elif holder.online is False:
                line.append("  offline", style="dim")
            if host:
                line.append(f"  {visible(holder.machine_id)}", style="dim")
            options.append(Option(line, id=option_id("h", *group.ref, holder.machine_id)))
    return options


class LockPanel(NavOptionList):
    DEFAULT_CSS = """
    LockPanel {
        height: 1fr; border: round $primary 50%; border-title-color: $text-accent;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    LockPanel:focus { border: round $accent; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "reboot locks"
        self._groups: Sequence[LockGroupView] = ()
        self._signature: tuple[tuple[str | None, str], ...] = ()

    def show(self, groups: Sequence[LockGroupView], now: float | None = None) -> None:
        """Each holder is named by its hostname when the fleet knows it (`HolderView.hostname`)."""
        now = time.time() if now is None else now
        self._groups = groups
        options = group_options(groups, now)
        signature = tuple((o.id, str(o.prompt)) for o in options)
        if signature == self._signature:
            return
        self._signature = signature
        keep = None
        if self.highlighted is not None and self.highlighted < self.option_count:
            keep = self.get_option_at_index(self.highlighted).id
        self.clear_options()
        self.add_options(options)
        if not options:
            self.add_option(Option(Text("no reboot locks in etcd", style="dim"), id="none", disabled=True))
            return
        ids = [o.id for o in options]
        self.highlighted = ids.index(keep) if keep in ids else (0 if self.has_focus else None)
        if self.highlighted is None and keep is None:
            self.highlighted = None

    @property
    def groups(self) -> Sequence[LockGroupView]:
        return self._groups

    def _highlighted_id(self) -> str | None:
        if self.highlighted is None or self.highlighted >= self.option_count:
            return None
        return self.get_option_at_index(self.highlighted).id

    def _group(self, kind: str, name: str) -> LockGroupView | None:
        return next((g for g in self._groups if g.ref == (kind, name)), None)

    def selected_group(self) -> LockGroupView | None:
        parts = option_parts(self._highlighted_id())
        if len(parts) < 3:
            return None
        return self._group(parts[1], parts[2])

    def selected_holder(self) -> tuple[LockGroupView, str] | None:
        parts = option_parts(self._highlighted_id())
        if len(parts) != 4 or parts[0] != "h":
            return None
        _, kind, name, holder = parts
        group = self._group(kind, name)
        return (group, holder) if group is not None else None

    def group_held_by(self, machine_id: str) -> LockGroupView | None:
        """The first group shown with `machine_id` among its holders."""
        return next((g for g in self._groups if any(h.machine_id == machine_id for h in g.holders)), None)
