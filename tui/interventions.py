"""The operator's interventions: one handler per mutating key (`tui.keymap.DashAction`).

A handler is `async def handler(host, selection)`, registered with `@handles(DashAction.X)`. The app
runs it in a worker (`run`) when the main screen posts `InterventionRequested`, so it may wait for a
dialog (`host.push_screen_wait`). It asks what it has to ask (destructive ones confirm with Cancel
focused) and calls the action layer through `call_action` (which writes the command / lock change /
admin call and the audit record), and `call_action` reports the outcome with `notify()`.

Read-only mode is refused three times: Textual hides the keys (`tui.keymap.action_allowed`), `run`
refuses a mutating action before any dialog opens, and the action layer itself raises
`ReadOnlyError`, reported as refused. Nothing here talks to etcd or the server itself, and nothing
here knows the app's class: `Host` is what a handler may use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from textual.notifications import SeverityLevel
from textual.screen import Screen

from coreroll.watch.model import FleetModel
from coreroll.watch.outcome import ActionResult, ReadOnlyError
from coreroll.wirenum import INT64_MAX
from tui.keymap import DashAction
from tui.messages import Selection
from widgets.dialogs import ChoiceDialog, ConfirmDialog, NumberDialog

T = TypeVar("T")


class ActionLayer(Protocol):
    """What the dashboard asks of `coreroll.watch.actions.Actions`."""

    async def check(self, ids: Sequence[str]) -> ActionResult: ...
    async def set_channel(self, ids: Sequence[str], channel: str) -> ActionResult: ...
    async def unlock(self, group: str, holder: str, api: str | None = None) -> ActionResult: ...
    async def set_max(self, group: str, new_max: int, api: str | None = None) -> ActionResult: ...
    async def pause_group(self, group: str) -> ActionResult: ...
    async def resume_group(self, group: str) -> ActionResult: ...


class Host(Protocol):
    """What a handler may use of the app (`tui.app.DashApp`)."""

    model: FleetModel
    actions: ActionLayer | None
    read_only: bool

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None: ...

    async def push_screen_wait(self, screen: Screen[T]) -> T: ...

    def flush(self) -> None: ...


Handler = Callable[[Host, Selection], Awaitable[None]]

HANDLERS: dict[DashAction, Handler] = {}
"""The handler of every mutating key."""


def handles(action: DashAction) -> Callable[[Handler], Handler]:
    """Register the decorated function as `action`'s handler."""
    if not action.mutating:
        raise ValueError(f"{action.id} is not a mutating key: its key runs action_{action.id}")

    def register(handler: Handler) -> Handler:
        if action in HANDLERS:
            raise ValueError(f"{action.id} has two handlers")
        HANDLERS[action] = handler
        return handler

    return register


async def run(host: Host, action: DashAction, selection: Selection) -> None:
    """Run `action`'s handler on `selection` (in a worker of the app)."""
    if host.read_only and action.mutating:
        host.notify(f"{action.id}: refused, the dashboard is read-only", severity="error")
        return
    await HANDLERS[action](host, selection)


def _names(host: Host, ids: Sequence[str]) -> str:
    names = []
    for mid in ids[:3]:
        row = host.model.get(mid)
        names.append(row.display_name if row is not None else mid)
    more = f" and {len(ids) - 3} more" if len(ids) > 3 else ""
    return ", ".join(names) + more


async def call_action(host: Host, what: str, call: Callable[[ActionLayer], Awaitable[ActionResult]]) -> bool:
    """Run one call on the action layer; notify its outcome (and log a failure); True when it
    succeeded."""
    if host.actions is None:
        host.notify(f"{what}: no action layer configured (no --etcd / --server?)", severity="error")
        return False
    try:
        result = await call(host.actions)
    except ReadOnlyError as exc:
        return _failed(host, f"{what}: refused ({exc})")
    except Exception as exc:  # the action layer's errors are meant for the operator
        return _failed(host, f"{what} failed: {exc}")
    message = result.message or ("done" if result.ok else "failed")
    host.notify(
        message, title=what, severity="information" if result.ok else "warning", timeout=6 if result.ok else 8
    )
    if not result.ok:
        host.model.note(f"{what}: {message}", "warning", kind="Action")
        host.flush()
    return result.ok


def _failed(host: Host, message: str) -> bool:
    host.notify(message, severity="error", timeout=8)
    host.model.note(message, "error", kind="Action")
    host.flush()
    return False


@handles(DashAction.CHECK)
async def check(host: Host, selection: Selection) -> None:
    ids = selection.nodes
    if not ids:
        host.notify("no node selected", severity="warning")
        return
    await call_action(host, f"check {_names(host, ids)}", lambda actions: actions.check(ids))


@handles(DashAction.SWITCH_CHANNEL)
async def switch_channel(host: Host, selection: Selection) -> None:
    ids = selection.nodes
    if not ids:
        host.notify("no node selected", severity="warning")
        return
    channels = [c.name for c in host.model.channels()]
    if not channels:
        host.notify("the server has told us of no channels yet (is --server reachable?)", severity="error")
        return
    current = {row.channel for row in map(host.model.get, ids) if row is not None}
    choice = await host.push_screen_wait(
        ChoiceDialog(
            f"Switch {_names(host, ids)} to channel:",
            channels,
            next(iter(current)) if len(current) == 1 else None,
        )
    )
    if choice is None:
        return
    confirmed = await host.push_screen_wait(
        ConfirmDialog(
            "Switch channel",
            f"Switch {len(ids)} node(s) ({_names(host, ids)}) to channel {choice!r}?\n"
            "They will update to that channel's version on their next check.",
            confirm_label="Switch",
        )
    )
    if confirmed:
        await call_action(
            host, f"switch {_names(host, ids)} to {choice}", lambda actions: actions.set_channel(ids, choice)
        )


@handles(DashAction.UNLOCK)
async def unlock(host: Host, selection: Selection) -> None:
    holder = selection.lock_holder
    if holder is None:
        row = selection.cursor
        who = row.display_name if row is not None and not selection.locks_focused else "selection"
        host.notify(f"{who} holds no reboot lock", severity="warning")
        return
    group = selection.lock_group or ""
    api = selection.lock_api
    label = _lock_label(group, api)
    if api == "airlock":
        host.notify(f"{label} is airlock's (FleetLock): coreroll never writes its keys", severity="warning")
        return
    confirmed = await host.push_screen_wait(
        ConfirmDialog(
            "Release reboot lock",
            f"Release {holder}'s reboot lock in group {label}?\n"
            "Another node may then reboot while this one is still rebooting.",
            confirm_label="Unlock",
        )
    )
    if confirmed:
        await call_action(
            host, f"unlock {holder} in {label}", lambda actions: actions.unlock(group, holder, api)
        )


def _lock_label(group: str, api: str | None) -> str:
    """`'lb'`, or `'lb' (etcd v2)` when the semaphore is not a v3 one: the dialogs say which."""
    name = repr(group or "default")
    return f"{name} (etcd {api})" if api == "v2" else name


@handles(DashAction.SET_MAX)
async def set_max(host: Host, selection: Selection) -> None:
    group = selection.lock_group or ""
    api = selection.lock_api
    label = _lock_label(group, api)
    if api == "airlock":
        host.notify(f"{label} is airlock's (FleetLock): coreroll never writes its keys", severity="warning")
        return
    view = host.model.lock_group(group, api)
    current = view.max if view is not None else None
    number = await host.push_screen_wait(
        NumberDialog(
            f"Lock max for group {label}",
            f"How many nodes of {label} may reboot at once? (now {current if current is not None else '-'};"
            " 0 stops all reboots)",
            current,
            minimum=0,
            maximum=INT64_MAX,  # what locksmith can read back
        )
    )
    if number is None:
        return
    if current is not None and number < current:
        confirmed = await host.push_screen_wait(
            ConfirmDialog(
                "Lower lock max", f"Lower the max of {label} from {current} to {number}?", confirm_label="Set"
            )
        )
        if not confirmed:
            return
    await call_action(
        host, f"set max of {label} to {number}", lambda actions: actions.set_max(group, number, api)
    )


@handles(DashAction.PAUSE)
async def pause(host: Host, selection: Selection) -> None:
    row = selection.cursor
    if row is None:
        host.notify("no node selected", severity="warning")
        return
    group, node = row.group, row.display_name
    if not group:
        host.notify(f"{node} is in no server group (the server does not know it)", severity="warning")
        return
    view = host.model.group(group)
    paused = bool(view is not None and view.paused)
    verb = "Resume" if paused else "Pause"
    confirmed = await host.push_screen_wait(
        ConfirmDialog(
            f"{verb} rollout",
            f"{verb} updates for server group {group!r} ({node}'s group)?",
            confirm_label=verb,
        )
    )
    if not confirmed:
        return
    if paused:
        await call_action(host, f"resume group {group}", lambda actions: actions.resume_group(group))
    else:
        await call_action(host, f"pause group {group}", lambda actions: actions.pause_group(group))
