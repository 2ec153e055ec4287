"""`EventLog`: activity from the update server, interventions (audit records) and this dashboard's
own notes, newest at the bottom, capped at `max_lines` (a RichLog, which only renders what is on
screen). `add(entries)` appends `coreroll.watch.views.ActivityEntry`s; entries already shown (by
id) are skipped, so the app can hand it the model's recent list every tick. Messages carry server
and etcd data: shown through `coreroll.textsafe.visible`, as `Text` (the log has markup off).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.binding import BindingType
from textual.widgets import RichLog

from coreroll.textsafe import visible
from coreroll.watch.views import ActivityEntry
from widgets.list_keys import SCROLL_BINDINGS

SEVERITY_STYLES = {"error": "bold red", "warning": "yellow", "info": ""}
SOURCE_MARK = {"server": "srv", "audit": "act", "dashboard": "ui "}


def format_entry(entry: ActivityEntry) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(time.strftime("%H:%M:%S", time.gmtime(entry.at)), style="dim")
    text.append(f" {SOURCE_MARK.get(entry.source) or visible(entry.source[:3])} ", style="dim")
    text.append(visible(entry.kind), style="bold " + SEVERITY_STYLES.get(entry.severity, ""))
    text.append(" ")
    text.append(visible(entry.message), style=SEVERITY_STYLES.get(entry.severity, ""))
    if entry.by:
        text.append(f" (by {visible(entry.by)})", style="dim")
    return text


class EventLog(RichLog):
    BINDINGS: ClassVar[list[BindingType]] = list(SCROLL_BINDINGS)  # j/k/g/G as in every list
    DEFAULT_CSS = """
    EventLog {
        height: 1fr; border: round $primary 50%; border-title-color: $text-accent;
        overflow-x: hidden; scrollbar-size-vertical: 1;
    }
    EventLog:focus { border: round $accent; }
    """

    def __init__(self, *, max_lines: int = 1000, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, wrap=False, markup=False, auto_scroll=True, id=id)
        self.border_title = "events"
        self._seen: set[str] = set()
        self._order: list[str] = []
        self._max = max_lines

    def add(self, entries: Iterable[ActivityEntry]) -> int:
        added = 0
        for entry in entries:
            if entry.id in self._seen:
                continue
            self._seen.add(entry.id)
            self._order.append(entry.id)
            self.write(format_entry(entry))
            added += 1
        if len(self._order) > 4 * self._max:  # forget ids long scrolled away
            drop = self._order[: -2 * self._max]
            self._order = self._order[-2 * self._max :]
            self._seen.difference_update(drop)
        return added
