"""The main screen: header, channel bar, node table (+ filter line), lock panel and event log.

Layout: wide terminals (>= 120 columns) put the lock panel and event log in a column on the right;
narrower ones (80x24 over SSH) stack them in a short strip under the table, side by side. The
screen only arranges widgets and turns keys into typed messages for the app (tui/messages.py): it
never calls the app and does not import it; the app owns the model, the view, the sources and the
actions. Its keys are `tui.keymap.DashAction`: a non-mutating one runs `action_<id>` here, a mutating
one runs `action_intervene`, which posts `InterventionRequested` with what is selected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input

from coreroll.textsafe import visible
from coreroll.watch.query import QueryError, parse_query
from tui import keymap, messages
from tui.keymap import MAIN_BINDINGS
from tui.textual_compat import PromptScreen
from widgets.channel_bar import ChannelBar
from widgets.event_log import EventLog
from widgets.header import DashHeader
from widgets.key_bar import KeyBar
from widgets.lock_panel import LockPanel
from widgets.node_columns import NODE_TABLE
from widgets.node_table import NodeTable

if TYPE_CHECKING:
    from tui.messages import DashView


class FilterInput(Input):
    """The filter line. Its box has a fixed size (full width, 3 lines), so a new value never moves
    anything: Textual's Input asks for a layout pass of the whole screen on every keystroke (its
    `virtual_size`, which follows the text, is a layout reactive), 15-40 ms under load. Here the
    same reactive only repaints the line."""

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)


class MainScreen(PromptScreen):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]  # noqa: RUF012  # Screen declares it an instance attribute
    BINDINGS: ClassVar[list[BindingType]] = list(MAIN_BINDINGS)

    def compose(self) -> ComposeResult:
        yield DashHeader(id="header")
        yield ChannelBar(id="channels")
        with Horizontal(id="body"):
            with Vertical(id="table-pane"):
                yield NodeTable(NODE_TABLE, id="nodes")
                yield FilterInput(
                    placeholder="filter: text or channel:beta status:error lock:held", id="filter"
                )
            with Horizontal(id="side"):
                yield LockPanel(id="locks")
                yield EventLog(id="events")
        yield KeyBar()

    _query_before: str = ""

    def update_now_wanted(self) -> bool:
        """Update the screen at once while a key's effect is on its way (see PromptScreen)."""
        return self.dash.key_recent()

    @property
    def dash(self) -> DashView:
        return cast("DashView", self.app)  # a DashApp: naming that class here would close an import circle

    @property
    def table(self) -> NodeTable:
        return self.query_one("#nodes", NodeTable)

    def on_mount(self) -> None:
        self._query_before = ""
        self._query_error = ""
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.app.check_action(action, parameters)

    # -- filter line -----------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        self._query_before = self.dash.query_text
        box.value = self.dash.query_text
        box.add_class("-shown")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        try:
            parse_query(event.value)
        except QueryError as exc:
            # plain Content: a str would be read as markup, and "x:[/]" must show as typed
            self._query_error = visible(str(exc))
            event.input.border_subtitle = Content(self._query_error)
            event.input.add_class("-bad-query")
            return
        event.input.border_subtitle = ""
        event.input.remove_class("-bad-query")
        self.app.post_message(messages.FilterRequested(event.value))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if event.input.has_class("-bad-query"):
            self.app.notify(self._query_error or "bad filter", severity="error")
            return
        event.input.remove_class("-shown")
        self.table.focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("-shown"):  # cancel the edit: back to the filter from before `/`
            box.remove_class("-shown")
            box.remove_class("-bad-query")
            box.border_subtitle = ""
            self.app.post_message(messages.FilterRequested(self._query_before))
            self.table.focus()
        elif not self.table.has_focus:
            self.table.focus()
        elif self.table.marked:
            self.table.clear_marks()
        elif self.dash.query_text:
            self.app.post_message(messages.FilterRequested(""))
            self.app.notify("filter cleared")

    # -- focus -----------------------------------------------------------------------------
    def action_focus_log(self) -> None:
        self.query_one("#events", EventLog).focus()

    def action_focus_locks(self) -> None:
        panel = self.query_one("#locks", LockPanel)
        panel.focus()
        if panel.highlighted is None and panel.option_count:
            panel.highlighted = 0

    def action_focus_table(self) -> None:
        self.table.focus()

    # -- table -----------------------------------------------------------------------------
    def action_mark(self) -> None:
        self.table.toggle_mark()

    def action_sort(self) -> None:
        self.app.post_message(messages.SortRequested(reverse_only=False))

    def action_reverse(self) -> None:
        self.app.post_message(messages.SortRequested(reverse_only=True))

    def action_detail(self) -> None:
        key = self.table.cursor_key
        if key is None:
            self.app.notify("no node selected", severity="warning")
            return
        self.app.post_message(messages.DetailRequested(key))

    def action_freeze(self) -> None:
        self.app.post_message(messages.FreezeRequested())

    # -- interventions (the app runs the key's handler: it asks, confirms and reports) ----
    def action_intervene(self, binding_id: str) -> None:
        action = keymap.DashAction.by_id(binding_id)
        if action is not None:
            self.app.post_message(messages.InterventionRequested(action, self.selection()))

    def selection(self) -> messages.Selection:
        """What the intervention keys act on now: the marked rows (else the cursor row), and for
        the lock keys the lock panel's selection when it has the focus, else the cursor row."""
        row = self.table.cursor_row
        panel = self.query_one("#locks", LockPanel)
        group: str | None = None
        holder: str | None = None
        view = None
        if panel.has_focus:
            selected = panel.selected_holder()
            if selected is not None:
                view, holder = selected
            else:
                view = panel.selected_group()
        elif row is not None and row.lock_groups_held:
            holder = row.machine_id
            view = panel.group_held_by(row.machine_id)
            group = row.lock_groups_held[0] if view is None else None
        elif row is not None:
            group = row.lock_group
        if view is not None:
            group = view.group
        return messages.Selection(
            tuple(self.table.selected_keys()),
            row,
            group,
            holder,
            panel.has_focus,
            view.kind if view is not None else None,
        )
