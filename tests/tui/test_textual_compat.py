"""The Textual boundary: private Textual names live only in tui/textual_compat.py, and each one it
hooks still exists in the installed Textual (an upgrade that renames one fails here, loudly)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.app import App
from textual.screen import Screen
from textual.widget import Widget

from tui.textual_compat import HOOKED

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "tui" / "textual_compat.py"

# Private Textual names this project has used (or could be tempted to): none may appear outside
# textual_compat.py. Extend the list when a new one is hooked there.
PRIVATE_NAMES = sorted(
    {name for _, names in HOOKED.values() for name in names}
    | {
        "_watch_value",
        "_scroll_update",
        "_refresh_scrollbars",
        "_size_updated",
        "_update_timer",
        "_merged_bindings",
        "_bindings",
    }
)


@pytest.mark.parametrize("purpose", sorted(HOOKED))
def test_hooked_names_exist_in_installed_textual(purpose: str) -> None:
    cls, names = HOOKED[purpose]
    instance: object
    if issubclass(cls, App):
        instance = App()
    elif issubclass(cls, Screen):
        instance = Screen()
    else:
        instance = Widget()
    missing = [n for n in names if not hasattr(cls, n) and not hasattr(instance, n)]
    assert not missing, f"Textual no longer has {missing} ({purpose}); update tui/textual_compat.py"


def test_no_private_textual_name_outside_the_compat_module() -> None:
    pattern = re.compile(r"\.(" + "|".join(re.escape(n) for n in PRIVATE_NAMES) + r")\b")
    offenders = []
    for folder in ("tui", "widgets", "tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == COMPAT or path == Path(__file__).resolve():
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "private Textual names outside tui/textual_compat.py:\n" + "\n".join(offenders)


async def test_typing_in_the_filter_line_never_asks_for_a_layout_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A keystroke in the filter repaints the line; a layout pass of the whole screen costs 15-40 ms
    under load (the keypress budget is 50 ms). Plain Textual Input asks for one per keystroke."""
    from tui.app import DashApp
    from tui.screens.main import FilterInput

    layout_asks: list[str] = []
    refresh = Widget.refresh

    def counting_refresh(self: Widget, *regions: object, **kwargs: object) -> Widget:
        if kwargs.get("layout") and isinstance(self, FilterInput):
            layout_asks.append(self.value)
        return refresh(self, *regions, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Widget, "refresh", counting_refresh)
    app = DashApp(watch_tty=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash")
        await pilot.pause()
        layout_asks.clear()
        await pilot.press("a", "b", "c")
        await pilot.pause()
        assert app.main_screen.query_one("#filter", FilterInput).value == "abc"
    assert layout_asks == []
