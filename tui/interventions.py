"""The operator's interventions as dialogs + calls on `coreroll.watch.actions.Actions`.

Each function runs in a worker of `DashApp` (so it may wait for a dialog with `push_screen_wait`),
asks what it has to ask (destructive ones confirm with Cancel focused), calls the action layer
(which writes the command / lock change / admin call and the audit record) and reports the
outcome with `notify()`. Read-only mode is refused twice: the keys are hidden by `check_action`,
and if a call gets here anyway the action layer raises `ReadOnlyError`, reported as refused.
Nothing here talks to etcd or the server itself.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from coreroll.locks import INT64_MAX
from widgets.dialogs import ChoiceDialog, ConfirmDialog, NumberDialog

if TYPE_CHECKING:
    from tui.app import DashApp


def _names(app: DashApp, ids: list[str]) -> str:
    names = []
    for mid in ids[:3]:
        row = app.model.get(mid)
        names.append(row.display_name if row is not None else mid)
    more = f" and {len(ids) - 3} more" if len(ids) > 3 else ""
    return ", ".join(names) + more


async def _call(app: DashApp, what: str, method: str, *args: Any) -> bool:
    """Run one action; notify its outcome; True when it succeeded."""
    if app.read_only:
        app.notify(f"{what}: refused, the dashboard is read-only", severity="error")
        return False
    if app.actions is None:
        app.notify(f"{what}: no action layer configured (no --etcd / --server?)", severity="error")
        return False
    try:
        result = getattr(app.actions, method)(*args)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # the action layer's errors are meant for the operator
        kind = type(exc).__name__
        message = f"{what}: refused ({exc})" if kind == "ReadOnlyError" else f"{what} failed: {exc}"
        app.notify(message, severity="error", timeout=8)
        app.model.note(message, "error", kind="Action")
        app.flush()
        return False
    ok = bool(getattr(result, "ok", True))
    message = str(getattr(result, "message", "") or ("done" if ok else "failed"))
    app.notify(message, title=what, severity="information" if ok else "warning", timeout=6 if ok else 8)
    if not ok:
        app.model.note(f"{what}: {message}", "warning", kind="Action")
        app.flush()
    return ok


async def check(app: DashApp, ids: list[str]) -> None:
    if not ids:
        app.notify("no node selected", severity="warning")
        return
    await _call(app, f"check {_names(app, ids)}", "check", ids)


async def switch_channel(app: DashApp, ids: list[str]) -> None:
    if not ids:
        app.notify("no node selected", severity="warning")
        return
    channels = [c.name for c in app.model.channels()]
    if not channels:
        app.notify("the server has told us of no channels yet (is --server reachable?)", severity="error")
        return
    current = {app.model.get(i).channel for i in ids if app.model.get(i) is not None}
    choice = await app.push_screen_wait(
        ChoiceDialog(
            f"Switch {_names(app, ids)} to channel:",
            channels,
            next(iter(current)) if len(current) == 1 else None,
        )
    )
    if choice is None:
        return
    confirmed = await app.push_screen_wait(
        ConfirmDialog(
            "Switch channel",
            f"Switch {len(ids)} node(s) ({_names(app, ids)}) to channel {choice!r}?\n"
            "They will update to that channel's version on their next check.",
            confirm_label="Switch",
        )
    )
    if confirmed:
        await _call(app, f"switch {_names(app, ids)} to {choice}", "set_channel", ids, choice)


async def unlock(app: DashApp, group: str, holder: str) -> None:
    label = group or "default"
    confirmed = await app.push_screen_wait(
        ConfirmDialog(
            "Release reboot lock",
            f"Release {holder}'s reboot lock in group {label!r}?\n"
            "Another node may then reboot while this one is still rebooting.",
            confirm_label="Unlock",
        )
    )
    if confirmed:
        await _call(app, f"unlock {holder} in {label}", "unlock", group, holder)


async def set_max(app: DashApp, group: str) -> None:
    view = app.model.lock_group(group)
    label = group or "default"
    current = view.max if view is not None else None
    number = await app.push_screen_wait(
        NumberDialog(
            f"Lock max for group {label!r}",
            f"How many nodes of {label!r} may reboot at once? (now {current if current is not None else '-'};"
            " 0 stops all reboots)",
            current,
            minimum=0,
            maximum=INT64_MAX,  # what locksmith can read back
        )
    )
    if number is None:
        return
    if current is not None and number < current:
        confirmed = await app.push_screen_wait(
            ConfirmDialog(
                "Lower lock max", f"Lower {label!r}'s max from {current} to {number}?", confirm_label="Set"
            )
        )
        if not confirmed:
            return
    await _call(app, f"set max of {label} to {number}", "set_max", group, number)


async def pause(app: DashApp, group: str | None, node: str) -> None:
    if not group:
        app.notify(f"{node} is in no server group (the server does not know it)", severity="warning")
        return
    view = app.model.group(group)
    paused = bool(view is not None and view.paused)
    verb = "Resume" if paused else "Pause"
    confirmed = await app.push_screen_wait(
        ConfirmDialog(
            f"{verb} rollout",
            f"{verb} updates for server group {group!r} ({node}'s group)?",
            confirm_label=verb,
        )
    )
    if confirmed:
        method = "resume_group" if paused else "pause_group"
        await _call(app, f"{verb.lower()} group {group}", method, group)
