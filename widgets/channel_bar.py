"""`ChannelBar`: one line per channel: the version the server offers, a progress bar of how many of
the channel's nodes run it, counts updating / failed / on hold, and `group X PAUSED` (with the
halt reason) when a server group on that channel has updates paused.

`show(channels)` with `coreroll.watch.views.ChannelView`s (the model computes the progress);
repaints only when the text changed. The bar is drawn with block characters, so it reads without
colour too. Names, versions and halt reasons are the server's: shown through `visible()`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from coreroll.textsafe import visible
from coreroll.watch.views import ChannelView, ServerGroupView


def bar(fraction: float, width: int) -> str:
    filled = round(max(0.0, min(fraction, 1.0)) * width)
    return "█" * filled + "░" * (width - filled)


def render_channels(
    channels: Sequence[ChannelView], width: int = 80, groups: Sequence[ServerGroupView] = ()
) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if not channels:
        text.append(" channels: - (no server data)", style="dim")
        return text
    bar_width = 20 if width >= 100 else 10
    for n, channel in enumerate(channels):
        if n:
            text.append("\n")
        p = channel.progress
        text.append(f" {visible(channel.name):<8}", style="bold")
        text.append(f" {visible(channel.version or '-'):<11} ")
        text.append(bar(p.fraction, bar_width), style="green")
        text.append(f" {int(p.fraction * 100):3d}% {p.done}/{p.total}")
        for group in groups:  # first, so it survives a narrow terminal
            if group.channel == channel.name and (group.paused or group.halted_reason):
                text.append("  ")
                text.append(f"group {visible(group.name)} PAUSED", style="bold reverse yellow")
                if group.halted_reason:
                    text.append(f" ({visible(group.halted_reason)})", style="yellow")
        if p.updating:
            text.append(f"  updating {p.updating}", style="yellow")
        if p.failed:
            text.append(f"  failed {p.failed}", style="bold red")
        if p.on_hold:
            text.append(f"  on hold {p.on_hold}", style="magenta")

    return text


class ChannelBar(Widget):
    """As many lines as channels (at most MAX_LINES); only a change in the number of channels
    costs a layout pass, new numbers just repaint the lines."""

    MAX_LINES = 4
    DEFAULT_CSS = """
    ChannelBar { height: 1; background: $surface; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text()
        self._channels: Sequence[ChannelView] = ()
        self._groups: Sequence[ServerGroupView] = ()
        self._lines = 1

    def render(self) -> Text:
        return self._text

    def show(self, channels: Sequence[ChannelView], groups: Sequence[ServerGroupView] = ()) -> None:
        self._channels, self._groups = channels, groups
        text = render_channels(channels, self.size.width or 80, groups)
        lines = min(max(len(channels), 1), self.MAX_LINES)
        if lines != self._lines:
            self._lines = lines
            self.styles.height = lines
        if text != self._text:
            self._text = text
            self.refresh()

    def on_resize(self) -> None:
        self._text = Text()
        self.show(self._channels, self._groups)
