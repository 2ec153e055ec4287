"""Which screen lines of a text widget changed, and up to which cell: what a repaint must resend.

Textual resends every cell of a refreshed region, from the widget's left edge to the region's
right end. Over SSH those bytes are the cost: a header that rewrote both its lines at every tick
sent most of the dashboard's traffic, though only a few digits of the counts moved. So a widget
refreshes `Region(0, y, end, 1)` for each `(y, end)` from `changed_lines(old, new)` instead of
itself as a whole (the cells past `end` are the same on screen already).
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text

WHOLE_LINE = 1 << 16  # an `end` past any terminal's width: refresh the whole line


def changed_lines(old: Text, new: Text) -> list[tuple[int, int]]:
    """`(line number, end cell)` for every line of `new` that differs from the same line of `old`:
    the cells from 0 to `end` are all that can differ (lines gone from `new` count as changed)."""
    old_lines, new_lines = old.split("\n"), new.split("\n")
    changed = []
    for y in range(max(len(old_lines), len(new_lines))):
        before = old_lines[y] if y < len(old_lines) else Text()
        after = new_lines[y] if y < len(new_lines) else Text()
        end = changed_end(before, after)
        if end:
            changed.append((y, end))
    return changed


def changed_end(old: Text, new: Text) -> int:
    """The cell just after the last one that differs between the one-line texts (0: none differ).
    Text of wide or zero-width characters gives WHOLE_LINE (cells and characters do not line up)."""
    if old.plain == new.plain and old.spans == new.spans and old.style == new.style:
        return 0
    if cell_len(old.plain) != len(old.plain) or cell_len(new.plain) != len(new.plain):
        return WHOLE_LINE
    before, after = _cells(old), _cells(new)
    end = max(len(before), len(after))
    while end and _at(before, end - 1) == _at(after, end - 1):
        end -= 1
    return end


def _cells(text: Text) -> list[tuple[str, Style | str]]:
    """(character, style) per cell, the styles of every span over it combined in order."""
    base: Style | str = text.style
    styles: list[list[Style | str]] = [[base] for _ in text.plain]
    for span in text.spans:
        for i in range(max(span.start, 0), min(span.end, len(styles))):
            styles[i].append(span.style)
    return [(char, _combined(layers)) for char, layers in zip(text.plain, styles, strict=True)]


def _combined(layers: list[Style | str]) -> Style | str:
    if len(layers) == 1:
        return layers[0]
    return Style.chain(*(Style.parse(s) if isinstance(s, str) else s for s in layers if s))


def _at(cells: list[tuple[str, Style | str]], i: int) -> tuple[str, Style | str] | None:
    return cells[i] if i < len(cells) else None
