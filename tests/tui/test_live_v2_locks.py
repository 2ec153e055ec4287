"""The dashboard on a locksmith cluster as Flatcar ships it: locksmithd keeps its semaphore in etcd's
v2 keyspace. Started with no API flag (`coreroll --etcd URL`), it shows the holder, says `locks: v2`
in the header, and `u` releases the lock through v2; with semaphores on both APIs, both show."""

from __future__ import annotations

import argparse
import os

import pytest

from coreroll.commands.dash import add_arguments
from coreroll.commands.dashboard.wiring import dashboard_setup
from coreroll.locks.keys import LOCK_PREFIX, semaphore_key
from tests.locks.rawetcd import (
    LOCKSMITHD_INITIAL,
    locksmithd_lock,
    raw_get,
    raw_keys,
    raw_put,
)
from tests.tui.helpers import wait_for, wait_for_text
from tests.tui.live import Etcd
from tui.app import DashApp
from tui.run import build_app
from widgets.dialogs import ConfirmDialog
from widgets.lock_panel import LockPanel

A = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


@pytest.fixture
def dashboard(clean_etcd: str, monkeypatch: pytest.MonkeyPatch) -> DashApp:
    """`coreroll --etcd <endpoint>`: no --etcd-api, nothing from LOCKSMITHCTL_* either."""
    for name in list(os.environ):
        if name.startswith("LOCKSMITHCTL_") or name in ("COREROLL_ETCD", "COREROLL_SERVER"):
            monkeypatch.delenv(name)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    Etcd(clean_etcd).node(A, hostname="alpha-1", channel="stable")
    return build_app(dashboard_setup(parser.parse_args(["--etcd", clean_etcd])))


async def test_locksmithds_v2_lock_is_shown_and_released_through_v2(
    dashboard: DashApp, clean_etcd: str
) -> None:
    locksmithd_lock(clean_etcd, A)
    app = dashboard
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for_text(app, "0/1 free", 10)
        screen = await wait_for_text(app, "locks: v2", 5)
        assert "alpha-1" in screen.split("reboot locks")[-1]  # the holder, by its hostname
        await pilot.press("r", "down")
        panel = app.main_screen.query_one("#locks", LockPanel)
        selected = panel.selected_holder()
        assert selected is not None and (selected[0].ref, selected[1]) == (("v2", ""), A)
        await pilot.press("u")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), 5, "confirmation")
        await wait_for_text(app, "(etcd v2)?", 5)  # the dialog says which semaphore
        await pilot.press("y")
        await wait_for(
            lambda: raw_get(clean_etcd, "v2", semaphore_key()) == b'{"semaphore":1,"max":1,"holders":[]}',
            10,
            "the v2 semaphore released",
        )
        await wait_for_text(app, "1/1 free", 10)
    assert raw_keys(clean_etcd, "v3", LOCK_PREFIX) == []  # nothing written to the v3 keyspace


async def test_semaphores_on_both_apis_are_both_shown_and_marked(dashboard: DashApp, clean_etcd: str) -> None:
    locksmithd_lock(clean_etcd, A)
    raw_put(clean_etcd, "v3", semaphore_key(""), LOCKSMITHD_INITIAL)
    app = dashboard
    async with app.run_test(size=(120, 40)):
        screen = await wait_for_text(app, "locks: v2+v3 BOTH hold semaphores", 10)
        await wait_for_text(app, "default (v3)  1/1 free", 5)
        screen = await wait_for_text(app, "default (v2)  0/1 free", 5)
        assert "Locks reboot-lock semaphores exist in both" in screen  # the event log says so too
