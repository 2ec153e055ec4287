"""`coreroll dash --serve` in a real browser: Debian's chromium, headless, driven by Playwright,
against a real etcd with a small fleet written into it. The page loads and shows the fleet, the
filter key works through the browser, a read-only session cannot unlock (the lock stays held in
etcd), the admin token given in the sign-in form unlocks, the token reaches no log and no command
line, and stopping the server ends every session. One chromium and one server for the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.locks.keys import semaphore_key
from coreroll.wire.keys import AUDIT_PREFIX
from tests.conftest import wipe_etcd
from tests.tui.browser import ServedDashboard, XtermPage, launch_chromium
from tests.tui.live import Etcd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TOKEN = "browser-test-admin-token-5f0c2a"
A = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
B = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
C = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"


@pytest.fixture(scope="module")
def fleet(etcd_server: EmbeddedEtcd) -> Etcd:
    wipe_etcd(etcd_server.endpoint)
    etcd = Etcd(etcd_server.endpoint)
    etcd.node(A, hostname="alpha-1", channel="stable", holds_lock=True)
    etcd.node(B, hostname="beta-2", channel="beta", status="UPDATE_STATUS_DOWNLOADING", progress=0.4)
    etcd.node(C, hostname="gamma-3", channel="stable")
    etcd.put(semaphore_key(""), json.dumps({"semaphore": 0, "max": 1, "holders": [A]}))
    return etcd


@pytest.fixture(scope="module")
def served(fleet: Etcd) -> Iterator[ServedDashboard]:
    dashboard = ServedDashboard("--etcd", fleet.endpoint, env={"COREROLL_TOKEN": TOKEN})
    try:
        yield dashboard
    finally:
        dashboard.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def tab(chromium: Any, served: ServedDashboard) -> Iterator[XtermPage]:
    page = XtermPage(chromium, served.url)
    try:
        yield page
    finally:
        page.close()


def holders(etcd: Etcd) -> list[str]:
    value = etcd.get(semaphore_key(""))
    return list(json.loads(value or b"{}").get("holders") or [])


def test_a_read_only_session_shows_and_filters_the_fleet_and_cannot_unlock(
    tab: XtermPage, fleet: Etcd, tmp_path: Path
) -> None:
    tab.wait_text("Admin token", "Esc: watch read-only")  # every session starts at the sign-in form
    tab.keys("Escape")
    screen = tab.wait_text(
        "[browser: read-only]", "alpha-1", "beta-2", "gamma-3", "nodes 3", absent=("Admin token",)
    )
    assert "Unlock" not in screen.splitlines()[-1]  # the key bar offers no intervention
    tab.screenshot(tmp_path / "browser.png")  # for a person looking at a failed run

    tab.keys("/")
    tab.type("beta")
    tab.wait_text("nodes 1/3", "beta-2", absent=("gamma-3",))
    tab.keys("Enter", "Escape")  # keep the filter, then clear it
    tab.wait_text("nodes 3", "gamma-3")

    tab.keys("r", "u", "t", "u", "?")  # u on the holder in the lock panel, then in the table; then help
    screen = tab.wait_text("coreroll keys [R] read-only")  # keys run in order: u came and went
    assert "Release reboot lock" not in screen
    assert holders(fleet) == [A]
    assert fleet.prefix(AUDIT_PREFIX) == {}  # not even an attempt recorded


def test_the_admin_token_in_the_sign_in_form_unlocks(
    tab: XtermPage, fleet: Etcd, served: ServedDashboard
) -> None:
    tab.wait_text("Admin token")
    tab.type("wrong-token")
    tab.keys("Enter")
    tab.wait_text("token refused: 2 tries left")
    tab.type(TOKEN)
    tab.keys("Enter")
    tab.wait_text("[browser: admin]", "alpha-1", "u Unlock", absent=("[R]", "Admin token"))
    processes = [psutil.Process(served.process.pid), *served.session_processes()]
    assert len(processes) >= 2  # the server and this tab's session
    for process in processes:  # `ps` shows every command line to every user
        assert TOKEN not in " ".join(process.cmdline()), process.cmdline()

    tab.keys("u")  # the cursor is on alpha-1, the holder
    tab.wait_text("Release reboot lock", "alpha-1")
    tab.keys("y")
    tab.wait_text("default  1/1 free")  # the lock panel shows it once etcd's watch delivered it
    assert holders(fleet) == []
    records = [json.loads(v) for v in fleet.prefix(AUDIT_PREFIX).values()]
    assert [r["action"] for r in records] == ["unlock"] and records[0]["by"].endswith(" via browser")
    assert TOKEN not in served.output  # typed into the page, yet in no log line


def test_stopping_the_server_ends_every_session(chromium: Any, served: ServedDashboard) -> None:
    page = XtermPage(chromium, served.url)
    try:
        page.wait_text("Admin token")
        sessions = served.session_processes()
        assert sessions, "a session process per open page"
        assert served.stop() == 0
        page.page.wait_for_selector("body.-closed", timeout=10_000)  # the page says the session ended
        assert not any(p.is_running() and p.status() != "zombie" for p in sessions)
    finally:
        page.close()
    assert "stopping: closing browser sessions" in served.output
    assert TOKEN not in served.output


def test_sessions_end_when_the_server_is_killed(chromium: Any, fleet: Etcd) -> None:
    """SIGKILL or the OOM killer closes no websocket: each session notices its server is gone."""
    served = ServedDashboard("--etcd", fleet.endpoint)
    page = XtermPage(chromium, served.url)
    alive: list[psutil.Process] = []
    try:
        page.wait_text("[browser: read-only]")
        sessions = served.session_processes()
        assert sessions
        served.process.kill()
        served.process.wait(10)
        _, alive = psutil.wait_procs(sessions, timeout=15)
        assert alive == [], "sessions left running without their server"
    finally:
        for process in alive:
            process.kill()
        page.close()
        served.stop()
