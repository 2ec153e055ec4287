"""The command palette (`ctrl+p` or `:` on the main screen): Textual's CommandPalette over these
providers (`DashApp.COMMANDS`).

- `DashCommands`: every `DashAction` by its description, with its key (mutating ones are left out
  in read-only mode), "go to node...", "change theme", "save the filter as..." (while a filter is
  set), each saved filter (`filter: <name>` applies it) and, when typed for, "forget saved filter".
- `NodeCommands`: while typing, the best few nodes as "go to node <name>" in the same list.
- `GoToNode`: the palette "go to node..." opens: nodes only, more of them, a list before typing.

Node names, machine ids, channels and saved filters are outside data: every prompt and help line
is a `Content` made from `visible()` text, never a str, because the palette reads a str prompt or
help as markup. For the same reason (and because Textual's fuzzy matcher is exponential on a long
hostile name) matching and highlighting are ours: `tui.node_search`. The node index is built in a
thread when the palette opens (0.3 s at 100,000 nodes) and kept while the model's version stays;
a keystroke's search then costs about 3 ms at 10,000 nodes, 30 ms at 100,000 (bench/palette.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, cast
from weakref import WeakKeyDictionary

from textual.binding import Binding
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.style import Style

from coreroll.textsafe import visible
from coreroll.watch.model import FleetModel
from tui import palette_actions
from tui.keymap import DashAction
from tui.node_search import HOSTNAME, NodeIndex, NodeMatch, match_one
from tui.palette_actions import PaletteHost

GO_TO_NODE = "go to node "
COMMAND_BONUS = 0.05  # a command ranks above a node of the same score: commands are what ctrl+p is for


def highlighted(text: str, offsets: Iterable[int], style: Style | None) -> Content:
    """`text` (already visible) as plain Content, the characters at `offsets` in `style`."""
    content = Content(text)
    style = style or Style(reverse=True)
    spans: list[list[int]] = []
    for offset in offsets:
        if offset >= len(text):
            break
        if spans and spans[-1][1] == offset:
            spans[-1][1] += 1
        else:
            spans.append([offset, offset + 1])
    for start, end in spans:
        content = content.stylize(style, start, end)
    return content


@dataclass(frozen=True)
class PaletteCommand:
    text: str  # what is matched and shown (visible)
    help: str  # the line under it (visible)
    run: Callable[[], Any]
    listed: bool = True  # shown before anything is typed


class DashCommands(Provider):
    """Every action of the dashboard, and the saved filters."""

    _commands: list[PaletteCommand]

    @property
    def dash(self) -> PaletteHost:
        return cast(PaletteHost, self.app)

    async def startup(self) -> None:
        self._commands = list(self.commands())

    def commands(self) -> Iterable[PaletteCommand]:
        app = self.dash
        for action in DashAction:
            if action is DashAction.COMMAND_PALETTE or (app.read_only and action.mutating):
                continue
            keys = ", ".join(
                app.get_key_display(Binding(key, ""))
                for key in app.keymap.get(action.id, action.key).split(",")
            )
            yield PaletteCommand(
                action.description,
                f"key {keys}  ({action.id})",
                partial(palette_actions.run_dash_action, app, action),
            )
        yield PaletteCommand(
            "go to node...", "by hostname or machine id, fuzzy", partial(open_go_to_node, app)
        )
        yield PaletteCommand("change theme", f"now {app.theme}", app.search_themes)
        if app.query_text:
            yield PaletteCommand(
                "save the filter as...",
                f"keep {visible(app.query_text)} under a name",
                partial(palette_actions.save_filter, app),
            )
        for saved in palette_actions.saved_filters(app):
            name = visible(saved.name)
            yield PaletteCommand(
                f"filter: {name}", visible(saved.query), partial(palette_actions.apply_filter, app, saved)
            )
            yield PaletteCommand(
                f"forget saved filter: {name}",
                visible(saved.query),
                partial(palette_actions.forget_filter, app, saved),
                listed=False,
            )

    async def discover(self) -> Hits:
        for command in self._commands:
            if command.listed:
                yield DiscoveryHit(
                    Content(command.text),
                    command.run,
                    text=command.text,
                    help=Content(command.help),  # pyright: ignore[reportArgumentType]  # Textual's from_markup passes a Content through
                )

    async def search(self, query: str) -> Hits:
        for command in self._commands:
            found = match_one(query, command.text)
            if found is not None:
                score, offsets = found
                yield Hit(
                    score + COMMAND_BONUS,
                    highlighted(command.text, offsets, self.match_style),
                    command.run,
                    text=command.text,
                    help=Content(command.help),  # pyright: ignore[reportArgumentType]  # Content: a str would be read as markup
                )


_INDEXES: WeakKeyDictionary[FleetModel, tuple[int, NodeIndex]] = WeakKeyDictionary()


async def node_index(model: FleetModel) -> NodeIndex:
    """The model's names indexed (built in a thread; kept while `model.version` stays)."""
    cached = _INDEXES.get(model)
    if cached is not None and cached[0] == model.version:
        return cached[1]
    version, rows = model.version, list(model.rows.values())  # rows are immutable: safe to read there
    index = await asyncio.to_thread(NodeIndex, [(row.machine_id, row.hostname) for row in rows])
    _INDEXES[model] = (version, index)
    return index


class NodeCommands(Provider):
    """ "go to node <name>" for the best few nodes matching what is typed (two letters or more)."""

    LIMIT: ClassVar[int] = 8
    PREFIX: ClassVar[str] = GO_TO_NODE
    MIN_QUERY: ClassVar[int] = 2
    SCALE: ClassVar[float] = 1.0
    _index: NodeIndex

    @property
    def dash(self) -> PaletteHost:
        return cast(PaletteHost, self.app)

    async def startup(self) -> None:
        self._index = await node_index(self.dash.model)

    async def search(self, query: str) -> Hits:
        query = query.strip()
        if query.lower().startswith(GO_TO_NODE.strip()):
            query = query[len(GO_TO_NODE.strip()) :]
        if len(query.strip()) < self.MIN_QUERY:
            return
        for match in self._index.search(query, self.LIMIT):
            yield self._hit(match)

    def _hit(self, match: NodeMatch, discovered: bool = False) -> Hit | DiscoveryHit:
        app = self.dash
        prompt = Content(self.PREFIX) + highlighted(match.name, match.offsets, self.match_style)
        go = partial(palette_actions.go_to_node, app, match.machine_id)
        help = Content(node_help(app.model, match))
        text = self.PREFIX + match.name
        if discovered:
            return DiscoveryHit(prompt, go, text=text, help=help)  # pyright: ignore[reportArgumentType]  # a Content, as above
        return Hit(match.score * self.SCALE, prompt, go, text=text, help=help)  # pyright: ignore[reportArgumentType]  # a Content, as above


class GoToNode(NodeCommands):
    """The "go to node" palette: nodes only."""

    LIMIT = 40
    PREFIX = ""
    MIN_QUERY = 1

    async def discover(self) -> Hits:
        for match in self._index.first(self.LIMIT):
            yield self._hit(match, discovered=True)


def node_help(model: FleetModel, match: NodeMatch) -> str:
    """The line under a node: its other name, channel, version and state (all visible)."""
    row = model.get(match.machine_id)
    if row is None:
        return "gone from etcd and the server"
    other = visible(row.machine_id) if match.by == HOSTNAME else visible(row.hostname or "no hostname")
    parts = [other, row.channel, row.version, row.state]
    return "  ".join(visible(part) for part in parts if part)


def open_go_to_node(app: PaletteHost) -> None:
    app.push_screen(CommandPalette(providers=[GoToNode], placeholder="go to node: hostname or machine id"))
