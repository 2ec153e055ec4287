"""`DashHeader`: one or two lines on top: cluster, etcd and server connection state, node counts by
state, time of the last update, flags `[R]` (read-only), `[browser: admin]` / `[browser: read-only]`
(a session served by `coreroll dash --serve`) and `[FROZEN]`, and the etcd API of the
reboot locks (`locks: v2`, `locks: v3`; with `--etcd-api auto` watching both: the one holding
semaphores, `locks: v2+v3 BOTH hold semaphores` when both do, `locks: none yet (v2, v3 watched)`).

Call `show(HeaderInfo(...))` once per tick; it repaints only the lines that changed, each up to
its last changed cell (`widgets.line_diff`: over SSH the header was most of the traffic). A source that
is down is written in capitals with how long ago it was last reachable, so the operator knows the
table below is the last known state, not the current one.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.geometry import Region
from textual.widget import Widget

from coreroll.textsafe import visible
from coreroll.watch.views import CONNECTED, ConnectionState, HeaderInfo
from widgets.line_diff import changed_lines

__all__ = ["DashHeader", "HeaderInfo", "render_header"]

STATE_STYLES = {
    "error": "bold red",
    "unreadable": "bold red",
    "updating": "yellow",
    "need-reboot": "cyan",
    "onhold": "magenta",
    "idle": "green",
}


def _connection(name: str, state: ConnectionState | None, now: float) -> Text:
    if state is None:
        return Text(f"{name}: -", style="dim")
    if state.status == CONNECTED:
        return Text.assemble(f"{name}: ", ("ok", "green"))
    label = state.status.upper()
    if state.last_ok is not None:
        label += f" (last ok {_ago(now - state.last_ok)} ago)"
    style = "bold white on red" if state.status == "down" else "bold yellow"
    return Text.assemble(f"{name}: ", (label, style))


def _ago(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def lock_apis(watched: frozenset[str], holding: frozenset[str]) -> Text:
    """Which etcd API the reboot locks come from (empty when no etcd listing arrived yet)."""
    if not watched:
        return Text()
    shown = sorted(holding & watched)
    if len(watched) == 1:
        return Text(f"locks: {next(iter(watched))}")
    if len(shown) == 1:
        return Text(f"locks: {shown[0]}")
    if shown:
        return Text("locks: v2+v3 BOTH hold semaphores", style="bold yellow")
    return Text("locks: none yet (v2, v3 watched)", style="dim")


def render_header(info: HeaderInfo) -> Text:
    now = info.now if info.now is not None else time.time()
    line = Text()
    line.append(" coreroll ", style="bold reverse")
    if info.read_only:
        line.append(" [R]", style="bold yellow")
    if info.session:
        line.append(f" [{info.session}]", style="bold yellow" if info.read_only else "bold red")
    if info.frozen:
        line.append(" [FROZEN]", style="bold magenta")
    line.append(f" {visible(info.cluster)}  ", style="bold")
    line.append_text(_connection("etcd", info.etcd, now))
    line.append("  ")
    line.append_text(_connection("server", info.server, now))
    line.append("  updated ")
    line.append("-" if info.last_update is None else time.strftime("%H:%M:%S", time.gmtime(info.last_update)))
    line.append("\n")
    line.append(f" nodes {info.shown}/{info.total}" if info.shown != info.total else f" nodes {info.total}")
    if info.loading:
        line.append(f"  loading, {info.loading} to go", style="bold yellow")
    for state, count in info.counts.items():
        if count:
            line.append("  ")
            line.append(f"{state} {count}", style=STATE_STYLES.get(state, ""))
    apis = lock_apis(info.lock_apis_watched, info.lock_apis_holding)
    if apis:
        line.append("  ")
        line.append_text(apis)
    return line


class DashHeader(Widget):
    """Fixed two lines; a change repaints them without a layout pass (unlike Static.update)."""

    DEFAULT_CSS = """
    DashHeader { height: 2; background: $panel; color: $foreground; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text()
        self.info: HeaderInfo | None = None

    def render(self) -> Text:
        return self._text

    def show(self, info: HeaderInfo) -> None:
        self.info = info
        text = render_header(info)
        changed = changed_lines(self._text, text)
        if changed:
            self._text = text
            for y, end in changed:
                self.refresh(Region(0, y, end, 1))
