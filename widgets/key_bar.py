"""`KeyBar`: the bottom line of key hints, drawn by one widget.

Textual's Footer mounts one widget per key (~10-40) and recomposes them whenever the active
bindings change, i.e. on every focus change such as opening or leaving the filter line. Each
recompose removes and mounts those widgets and lays out the whole screen (20-40 ms at 10,000 rows
while status changes stream in), which held the next keypress past its 50 ms budget. One line
of text needs no children: a change of bindings is a repaint of this line and nothing else.

The hints are the screen's active bindings with `show=True`, in order, one per action, as
`key description`; keys of disabled actions are dimmed. When they do not fit, the spaces around
the keys go (all of them fit at 80 columns); then the line is cropped at the right edge.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.screen import Screen
from textual.widget import Widget

Hint = tuple[str, str, bool]  # (key as displayed, description, enabled)


class KeyBar(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-bar--key", "key-bar--description", "key-bar--disabled"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    KeyBar > .key-bar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
    KeyBar > .key-bar--description { color: $footer-description-foreground; }
    KeyBar > .key-bar--disabled { color: $text-disabled; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.hints: tuple[Hint, ...] = ()

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if screen is not self.screen:
            return
        hints: list[Hint] = []
        actions: set[str] = set()
        for _, binding, enabled, _ in screen.active_bindings.values():
            if not binding.show or binding.action in actions:
                continue
            actions.add(binding.action)
            hints.append((self.app.get_key_display(binding), binding.description, enabled))
        if tuple(hints) != self.hints:
            self.hints = tuple(hints)
            self.refresh()

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-bar--key")
        description_style = self.get_component_rich_style("key-bar--description")
        disabled = self.get_component_rich_style("key-bar--disabled")
        line = Text(no_wrap=True, overflow="crop", end="")
        # " c Check  s Chan ", or where that does not fit (80 columns) "c Check s Chan"
        roomy = sum(len(key) + len(text) + 3 for key, text, _ in self.hints) <= self.size.width
        for n, (key, description, enabled) in enumerate(self.hints):
            dim = Style() if enabled else disabled
            if roomy:
                line.append(f" {key} ", key_style + dim)
                line.append(f"{description} ", description_style + dim)
            else:
                line.append(" " if n else "", description_style)
                line.append(key, key_style + dim)
                line.append(f" {description}", description_style + dim)
        return line
