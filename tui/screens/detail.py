"""Node detail: identity, the USR partition table as `cgpt show` lays it out, update status, the
server's view, pending commands, and the instance history from the update server.

`NodeDetailScreen(detail, machine_id, history)` where `detail` is the presenter's
`node_detail` (machine id -> `coreroll.watch.detail.NodeDetail`, None once gone) and `history` is
an async callable returning the server's history entries (`{at, status, version, reason, event, errorcode}`), or None when no
server is configured. The app calls `refresh_from_model()` on every repaint so the page follows the
node live. `escape` / `enter` go back. Every value on the page comes from etcd or the server: it is
shown through `coreroll.textsafe.visible`, in `Text` (never markup).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from coreroll.textsafe import visible
from coreroll.watch.detail import NodeDetail
from coreroll.watch.views import NodeRow
from tui.keymap import DETAIL_BINDINGS
from widgets.key_bar import KeyBar
from widgets.list_keys import NavScroll

_ROW = "{:>12}{:>12}{:>8}  {}"
_MORE = " " * 32 + "  {}"


def _t(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _d(value: object) -> str:
    return "-" if value is None or value == "" else visible(str(value))


def cgpt_table(detail: NodeDetail) -> str:
    """The node's USR partitions in `cgpt show`'s layout (start/size/part/contents), with the
    version each one holds (from the node's report)."""
    lines = [_ROW.format("start", "size", "part", "contents")]
    for part in detail.partitions:
        active = "  (booted)" if part.booted else ""
        lines.append(
            _ROW.format(
                _d(part.start), _d(part.size), _d(part.number), f'Label: "{visible(part.label)}"{active}'
            )
        )
        lines.append(_MORE.format("Type: Alias for coreos-rootfs"))
        lines.append(
            _MORE.format(
                f"Attr: priority={_d(part.priority)} tries={_d(part.tries)} successful={_d(part.successful)}"
            )
        )
        lines.append(_MORE.format(f"Version: {_d(part.version)}"))
    if not detail.partitions:
        lines.append("  (the node has not reported its partitions)")
    return "\n".join(lines)


def describe(row: NodeRow) -> Text:
    text = Text()
    text.append(f"{visible(row.display_name)}\n", style="bold")
    if row.error:
        text.append(f"UNREADABLE: {visible(row.error)}\n", style="bold red")
    pairs = [
        ("machine id", row.machine_id),
        ("hostname", row.hostname),
        ("ip", row.ip),
        ("online", None if row.online is None else ("yes" if row.online else "NO (alive key gone)")),
        ("channel", row.channel),
        ("version", row.version),
        ("active USR", row.active_partition),
        ("other USR", row.other_version),
        ("state", row.state),
        ("update status", row.update_status),
        ("progress", None if row.update_progress is None else f"{row.update_progress * 100:.0f}%"),
        ("new version", row.new_version),
        ("new size", row.new_size),
        ("last check", _t(row.last_check)),
        ("reboot strategy", row.reboot_strategy),
        ("lock group", None if row.lock_group is None else (row.lock_group or "default")),
        (
            "holds lock",
            None
            if row.holds_lock is None
            else (
                "yes: " + ", ".join(g or "default" for g in row.lock_groups_held) if row.holds_lock else "no"
            ),
        ),
        ("boot id", row.boot_id),
        ("booted at", _t(row.booted_at)),
        ("reported at", _t(row.reported_at)),
        ("server group", row.group),
        ("server status", row.server_status),
        ("server reason", row.server_status_reason),
        ("server version", row.server_version),
    ]
    for label, value in pairs:
        text.append(f"  {label:<16}", style="dim")
        text.append(f"{_d(value)}\n")
    return text


def commands_text(row: NodeRow) -> Text:
    text = Text()
    if not row.pending_commands:
        text.append("  none\n", style="dim")
    for command in row.pending_commands:
        if command.error:
            text.append(f"  {visible(command.id)}: {visible(command.error)}\n", style="red")
            continue
        args = visible(" ".join(f"{k}={v}" for k, v in command.args.items()))
        text.append(
            f"  {visible(command.id)}  {_d(command.action)} {args}  by {_d(command.by)} at {_t(command.at)}\n"
        )
    return text


def history_text(entries: list[dict[str, Any]] | None, error: str | None) -> Text:
    text = Text()
    if error:
        text.append(f"  {visible(error)}\n", style="yellow")
    elif entries is None:
        text.append("  loading...\n", style="dim")
    elif not entries:
        text.append("  no history on the server\n", style="dim")
    for entry in entries or []:
        if not isinstance(entry, dict):  # the server's reply, not trusted
            continue
        line = f"  {_d(entry.get('at'))}  {_d(entry.get('event')):<6} {_d(entry.get('status')):<14} {_d(entry.get('version')):<12}"
        reason = entry.get("reason")
        style = "red" if str(entry.get("status")) == "Error" else ""
        text.append(line + (f" {_d(reason)}" if reason else "") + "\n", style=style)
    return text


class NodeDetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = list(DETAIL_BINDINGS)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012  # Screen declares it an instance attribute
    DEFAULT_CSS = """
    NodeDetailScreen #detail { padding: 0 1; }
    NodeDetailScreen #columns { height: auto; }
    NodeDetailScreen.-narrow #columns { layout: vertical; }
    NodeDetailScreen #about { width: auto; min-width: 50; height: auto; }
    NodeDetailScreen #right { width: 1fr; height: auto; }
    NodeDetailScreen.-wide #right { margin-left: 2; }
    NodeDetailScreen Static { height: auto; }
    NodeDetailScreen .section { text-style: bold; color: $text-accent; margin-top: 1; }
    NodeDetailScreen.-wide #right > .section:first-child { margin-top: 0; }
    """

    def __init__(
        self,
        detail: Callable[[str], NodeDetail | None],
        machine_id: str,
        history: Callable[[str], Awaitable[list[dict[str, Any]]]] | None = None,
    ) -> None:
        super().__init__()
        self.detail = detail
        self.machine_id = machine_id
        self._history_loader = history
        self._history: list[dict[str, Any]] | None = None
        self._history_error: str | None = None if history else "no --server configured: no history"
        self._last_rev = -1

    def compose(self) -> ComposeResult:
        with NavScroll(id="detail"):
            with Horizontal(id="columns"):
                yield Static(id="about")
                with Vertical(id="right"):
                    yield Static("partitions (cgpt show)", classes="section")
                    yield Static(id="partitions")
                    yield Static("pending commands", classes="section")
                    yield Static(id="commands")
            yield Static("history (update server)", classes="section")
            yield Static(id="history")
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_from_model(force=True)
        if self._history_loader is not None:
            self.run_worker(self._load_history(), exclusive=True, group="history")

    async def _load_history(self) -> None:
        assert self._history_loader is not None
        try:
            self._history = await self._history_loader(self.machine_id)
            self._history_error = None
        except Exception as exc:  # shown in place; the rest of the page stays useful
            self._history_error = f"history unavailable: {exc}"
        self.query_one("#history", Static).update(history_text(self._history, self._history_error))

    def refresh_from_model(self, force: bool = False) -> None:
        detail = self.detail(self.machine_id)
        if detail is None:
            self.query_one("#about", Static).update(
                Text(f"{visible(self.machine_id)}: no longer known to etcd or the server", style="yellow")
            )
            return
        row = detail.row
        if row.rev == self._last_rev and not force:
            return
        self._last_rev = row.rev
        self.query_one("#about", Static).update(describe(row))
        self.query_one("#partitions", Static).update(Text(cgpt_table(detail), no_wrap=True))
        self.query_one("#commands", Static).update(commands_text(row))
        self.query_one("#history", Static).update(history_text(self._history, self._history_error))

    def action_close(self) -> None:
        self.dismiss(None)
