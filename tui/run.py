"""The dashboard from a `DashboardSetup` (built by `coreroll.commands.dashboard.wiring`).

    app = build_app(setup)               # KeymapError / ValueError for a bad key map or theme
    app.run(mouse=setup.mouse)

`build_app(setup, app_class=DashApp)` takes a DashApp subclass too (a browser session's); the key
map is the UI's own: `setup.keymap_path` (--keymap) else keys.toml, and COREROLL_KEYMAP.
`check_keys_and_theme(keymap_path, theme)` refuses what build_app would, building nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from coreroll.watch.setup import DashboardSetup
from tui.app import DashApp
from tui.keymap_config import LoadedKeymap, keymap_file, load_keymap

AppT = TypeVar("AppT", bound=DashApp)


def user_keymap(keymap_path: str | Path | None, app_class: type[DashApp] = DashApp) -> LoadedKeymap:
    """The key map of --keymap FILE (else keys.toml) and COREROLL_KEYMAP, checked (KeymapError)."""
    path, named = keymap_file(str(keymap_path) if keymap_path is not None else None)
    return load_keymap(app_class, file=path, file_wins=named)


def build_app(setup: DashboardSetup, app_class: type[AppT] = DashApp) -> AppT:
    """The dashboard over `setup` (`app_class`: a DashApp subclass, e.g. a browser session's)."""
    return app_class(
        **app_arguments(setup), keymap=user_keymap(setup.keymap_path, app_class), theme=setup.theme
    )


def app_arguments(setup: DashboardSetup) -> dict[str, Any]:
    """DashApp's arguments from what the setup wired (the key map and theme are the caller's)."""
    return {
        "model": setup.model,
        "buffer": setup.buffer,
        "sources": setup.sources,
        "actions": setup.actions,
        "read_only": setup.read_only,
        "cluster": setup.cluster,
        "refresh_interval": setup.refresh_interval,
        "history": setup.history,
        "clock": setup.clock,
        "sources_configured": setup.sources_configured,
    }


def check_keys_and_theme(keymap_path: str | None, theme: str | None) -> None:
    """Refuse (ValueError) what build_app would of the key map and the theme: `--serve` checks
    once here instead of failing in every browser tab."""
    DashApp(watch_tty=False, keymap=user_keymap(keymap_path), theme=theme)
