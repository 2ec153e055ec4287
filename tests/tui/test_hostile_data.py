"""The dashboard against a real etcd and a real update server fed hostile data: it keeps running,
and shows what it was sent as plain text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.tui.helpers import screen_text, wait_for, wait_for_text
from tests.tui.live import Etcd, make_live_app, register_instance, server_running
from tests.watch.helpers import publish
from tui.app import DashApp
from tui.sample import STATUS_KEY, status_json
from tui.screens.detail import NodeDetailScreen
from widgets.node_columns import SORT_CYCLE
from widgets.node_table import NodeTable

ODD = "0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd00"
NAN = "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a"
SERVER_ONLY = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with server_running(tmp_path / "server") as running:
        yield running


def table(app: DashApp) -> NodeTable:
    return app.main_screen.query_one("#nodes", NodeTable)


def still_running(app: DashApp) -> None:
    assert app.is_running and app.return_code is None
    assert app.unusable_updates == 0  # read defensively, not caught as a last resort


async def test_a_version_that_is_not_a_version_keeps_the_dashboard_running(
    clean_etcd: str, server: tuple[str, str]
) -> None:
    url, token = server
    publish(SimpleNamespace(url=url, token=token), "4700.0.0", "stable")
    register_instance(url, SERVER_ONLY, track="stable", version="1.²")  # one unauthenticated request
    etcd = Etcd(clean_etcd)
    etcd.node(ODD, hostname="odd-1", channel="stable", version="1.²", other_version="٣.²")
    nan_status = json.loads(status_json(NAN, hostname="nan-2", channel="stable"))
    nan_status["update"]["progress"] = float("nan")
    nan_status["update"]["last_checked_time"] = 1e300
    etcd.put(STATUS_KEY.format(NAN), json.dumps(nan_status))
    app = make_live_app(clean_etcd, url, token)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await wait_for(lambda: {ODD, NAN, SERVER_ONLY} <= set(app.model.rows), 10, "all three machines")
        text = await wait_for_text(app, "odd-1", 10)
        assert "1.²" in text and "٣.²" in text
        await wait_for_text(app, "update.progress", 10)  # the NaN row says which field is wrong
        for _ in SORT_CYCLE:  # every sort column, the version ones included
            await pilot.press("o")
            await pilot.pause()
            still_running(app)
        await pilot.press("O")
        await wait_for(lambda: table(app).move_cursor_to_key(ODD), 5, "the odd row")
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, NodeDetailScreen), 5, "the detail screen")
        assert "1.²" in screen_text(app)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, NodeDetailScreen), 5, "back on the main screen")
        still_running(app)
