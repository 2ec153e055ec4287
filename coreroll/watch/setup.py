"""`DashboardSetup`: everything the dashboard watches and acts through, handed to the UI as one
plain object.

`coreroll.commands.dash` is the dashboard's composition root: it resolves the flags (etcd
endpoints and TLS, the update server, the admin token, the lock API), builds the model, the
update buffer, the sources and the action layer, and hands this object to `tui` (which imports
only the watch model, widgets and pure helpers: pyproject's import-linter contracts). The UI
decides only what is its own: the key map file (`keymap_path`), the theme and the mouse.

    setup = DashboardSetup(FleetModel(), buffer, sources=[EtcdSource(config, buffer.put)],
                           actions=Actions(config, None, None), cluster="http://127.0.0.1:2379")

`ServeSetup` is the same for `coreroll dash --serve`: where to listen, the command each browser
session runs (its settings travel in the environment, never on a command line) and what the
banner says about access.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer

HistoryLoader = Callable[[str], Awaitable[list[dict[str, Any]]]]
"""machine id -> the update server's history entries for it, newest first."""


class Source(Protocol):
    """A feed of updates into the buffer (`EtcdSource`, `FeedSource`): run as a worker, stopped at exit."""

    async def run(self) -> None: ...

    def stop(self) -> Any: ...


@dataclass
class DashboardSetup:
    model: FleetModel = field(default_factory=FleetModel)
    buffer: UpdateBuffer = field(default_factory=UpdateBuffer)
    sources: Sequence[Source] = ()
    # the action layer (`coreroll.watch.actions.Actions`, or None: watch only); typed loosely
    # because the UI states what it needs of it as its own Protocol (tui.interventions.ActionLayer)
    actions: Any = None
    cluster: str = ""
    read_only: bool = False
    refresh_interval: float = 0.2
    history: HistoryLoader | None = None
    sources_configured: Sequence[str] = ("etcd", "server")
    clock: Callable[[], float] = time.time
    keymap_path: str | None = None  # --keymap FILE; None: COREROLL_KEYMAP and keys.toml
    theme: str | None = None
    mouse: bool = False
    # a served browser session: the admin token given in its sign-in form -> a writing action layer
    admin_actions: Callable[[str], Any] | None = None


@dataclass(frozen=True)
class ServeSetup:
    listen: str  # [HOST:]PORT as given to --serve
    session_command: str  # what textual-serve runs (through a shell) for each browser session
    public_url: str | None = None
    read_only: bool = False
    has_admin_token: bool = False
    keymap_path: str | None = None  # checked once before serving, not in every session
    theme: str | None = None
    session_env: Mapping[str, str] = field(default_factory=dict)  # every session inherits these
    scrubbed_env: tuple[str, ...] = ()  # and never these

    def prepare_environment(self, environ: MutableMapping[str, str]) -> None:
        """Put the sessions' settings into `environ` (this process's: each session inherits it) and
        take out what no session may inherit. Done once the flags are checked, just before serving."""
        for name in self.scrubbed_env:
            environ.pop(name, None)
        environ.update(self.session_env)
