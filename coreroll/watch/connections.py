"""How a source's connection state moves, and which moves are news for the event log."""

from __future__ import annotations

from coreroll.watch import updates as u
from coreroll.watch.views import CONNECTED, CONNECTING, DOWN, ConnectionState

RETRYING = " (retrying)"


def next_state(
    old: ConnectionState, update: u.Connection, now: float
) -> tuple[ConnectionState, tuple[str, str] | None]:
    """The new state and, when it is news, a (message, severity) for the log. A reconnect loop
    stays "down" (since the first failure) until a connection succeeds: one line per outage."""
    status = update.status if update.status in (CONNECTED, DOWN) else CONNECTING
    detail = update.detail
    if old.status == DOWN and status == CONNECTING:
        status, detail = DOWN, f"{old.detail.removesuffix(RETRYING)}{RETRYING}"
    last_ok = now if status == CONNECTED else old.last_ok
    since = old.since if old.status == status and old.since is not None else now
    new = ConnectionState(update.source, status, detail, last_ok, since)
    news: tuple[str, str] | None = None
    if status == DOWN and old.status != DOWN:
        news = (f"{update.source} unreachable: {detail}", "warning")
    elif status == CONNECTED and old.last_ok is not None and old.status != CONNECTED:
        news = (f"{update.source} connected again", "info")
    return new, news
