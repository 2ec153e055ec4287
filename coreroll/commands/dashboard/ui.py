"""The one place the commands reach the Textual UI (`tui`), by module name at run time.

`coreroll` never imports Textual, tui or widgets (import-linter): the update system, the server and
`coreroll lock` load and run without them. The dashboard's commands (`dash`, `dash --serve`, a
browser session, `demo`) build everything else themselves (`coreroll.watch.setup`) and hand it
to an entry point of `tui` loaded here. The dependency runs one way: tui never imports
coreroll.commands (import-linter forbids it), so this is no import circle.
"""

from __future__ import annotations

import importlib
from types import ModuleType

UI_PACKAGE = "tui"


class UIUnavailable(Exception):
    """The dashboard's package (or Textual) cannot be imported; `str()` says why."""


def ui_module(name: str) -> ModuleType:
    """`tui.<name>`: `run` (terminal dashboard), `serve`, `browser_session`, `demo`."""
    try:
        return importlib.import_module(f"{UI_PACKAGE}.{name}")
    except ImportError as exc:
        raise UIUnavailable(f"the dashboard is not available: {exc}") from exc
