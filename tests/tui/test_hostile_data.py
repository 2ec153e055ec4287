"""The dashboard against a real etcd and a real update server fed hostile data: it keeps running,
and shows what it was sent as plain text."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.app import App, ComposeResult

from coreroll.locks import semaphore_key
from coreroll.watch import updates as u
from coreroll.watch.model import FleetModel
from coreroll.watch.views import ChannelView, RolloutProgress, ServerGroupView
from coreroll.wire.keys import audit_key
from tests.tui.helpers import screen_text, wait_for, wait_for_text
from tests.tui.live import Etcd, make_live_app, register_instance, server_running
from tests.watch.helpers import publish
from tui.app import DashApp
from tui.sample import STATUS_KEY, status_json
from tui.screens.detail import NodeDetailScreen
from widgets.channel_bar import render_channels
from widgets.dialogs import ChoiceDialog, ConfirmDialog
from widgets.lock_panel import LockPanel
from widgets.node_columns import SORT_CYCLE
from widgets.node_table import NodeTable

ROOT = Path(__file__).resolve().parents[2]
TITLE = "\x1b]0;pwned\x07"  # OSC 0: set the terminal's (here: tmux pane's) title
WIPE = "wipe\x1b[2J"  # erase the whole screen
MARKUP = "[bold red]x[/] [link=http://evil.example]click[/link]"  # must show literally
EVIL = "\x1b]2;e\x1fvil\x07"  # a lock holder's id: OSC 2 (a title), and \x1f (the lock panel's old separator)
TITLED = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
MARKED = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
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


@pytest.mark.slow
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


async def test_an_update_the_model_cannot_apply_is_noted_and_the_rest_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last resort behind the defensive parsing: whatever still raises is a line in the log."""

    def broken(model: FleetModel, update: u.Update) -> set[str]:
        raise ValueError("no such thing")

    monkeypatch.setitem(FleetModel._handlers, u.NodeAlive, broken)
    app = DashApp(watch_tty=False, sources_configured=())
    async with app.run_test(size=(160, 48)):
        app.buffer.put(u.NodeAlive(ODD, True))
        app.buffer.put(u.NodeStatus(NAN, STATUS_KEY.format(NAN), status_json(NAN, hostname="after-it")))
        await wait_for_text(app, "after-it", 5)
        await wait_for_text(app, "BadData ignored NodeAlive: ValueError: no", 5)
        (note,) = [e for e in app.model.activity if e.kind == "BadData"]
        assert note.message == "ignored NodeAlive: ValueError: no such thing" and note.severity == "error"
        assert app.unusable_updates == 1 and app.is_running and app.return_code is None


# --- control characters and markup from outside ----------------------------------------------


def escaped(text: str) -> str:
    return text.encode("unicode_escape").decode().replace("\\\\", "\\")  # "\x1b" as 4 characters


def plain_text_only(text: str) -> None:
    """No control character reached the screen (the terminal would have acted on it)."""
    assert not any(ord(c) < 32 and c != "\n" for c in text), repr(text)


@pytest.mark.slow
async def test_strings_from_etcd_are_shown_as_text(clean_etcd: str) -> None:
    etcd = Etcd(clean_etcd)
    etcd.node(TITLED, hostname=TITLE, channel="stable", lock_group="\x1b[2J")
    etcd.node(MARKED, hostname="[red]x[/]", channel="stable")
    etcd.put(semaphore_key(""), json.dumps({"semaphore": -1, "max": 1, "holders": [EVIL, TITLED]}))
    etcd.put(semaphore_key("\x1b[2J"), json.dumps({"semaphore": 1, "max": 1, "holders": None}))
    audit = {"at": 1795770000, "by": "ops", "action": "[b]check[/b]", "target": TITLE, "result": "ok"}
    etcd.put(audit_key("0000000000000000001-00000000"), json.dumps(audit))
    app = make_live_app(clean_etcd, None)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await wait_for_text(app, f"Intervention [b]check[/b] {escaped(TITLE)}", 10)  # the event log
        text = await wait_for_text(app, f"> {escaped(TITLE)} stable", 10)  # the table row
        assert "[red]x[/]" in text  # literally: not red, and no MarkupError
        assert escaped(EVIL) in text and escaped("\x1b[2J") in text  # the lock panel
        plain_text_only(text)

        await wait_for(lambda: table(app).move_cursor_to_key(TITLED), 5, "the titled row")
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, NodeDetailScreen), 5, "the detail screen")
        text = await wait_for_text(app, "machine id", 5)
        assert escaped(TITLE) in text and escaped("\x1b[2J") in text
        plain_text_only(text)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, NodeDetailScreen), 5, "the main screen")

        await pilot.press("r")  # the lock panel; then the holder with the crafted id
        panel = app.main_screen.query_one("#locks", LockPanel)
        for _ in range(4):
            selected = panel.selected_holder()
            if selected is not None and selected[1] == EVIL:
                break
            await pilot.press("down")
        assert panel.selected_holder() is not None and panel.selected_holder()[1] == EVIL  # type: ignore[index]
        await pilot.press("u")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), 5, "the unlock dialog")
        text = await wait_for_text(app, f"Release {escaped(EVIL)}", 5)
        plain_text_only(text)
        await pilot.press("y")  # the raw id is what gets unlocked; the notification shows it escaped
        text = await wait_for_text(app, f"unlocked {escaped(EVIL)} in lock group", 10)
        plain_text_only(text)
        assert json.loads(etcd.get(semaphore_key("")) or b"{}")["holders"] == [TITLED]
        still_running(app)


class DialogApp(App[None]):
    def compose(self) -> ComposeResult:
        return iter(())


async def test_dialogs_show_outside_strings_literally() -> None:
    app = DialogApp()
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(ChoiceDialog(f"channel {MARKUP}", [MARKUP, TITLE, "stable"], current=TITLE))
        text = await wait_for_text(app, "stable", 5)
        assert text.count(MARKUP) == 2 and f"{escaped(TITLE)}  (current)" in text
        plain_text_only(text)
        await pilot.press("escape")
        app.push_screen(ConfirmDialog(f"[b]{TITLE}", f"first line {MARKUP}\nsecond {WIPE}"))
        text = await wait_for_text(app, "second", 5)
        assert f"[b]{escaped(TITLE)}" in text and f"first line {MARKUP}" in text
        assert f"second {escaped(WIPE)}" in text  # the body keeps its own line break
        plain_text_only(text)


async def test_a_filter_with_brackets_is_explained_as_typed() -> None:
    app = DashApp(watch_tty=False, sources_configured=())
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("/", *"x:[/]")  # each prefix ("x:[/") is a bad filter with a bracket
        await wait_for_text(app, "unknown filter field 'x' in 'x:[/]'", 5)
        await pilot.press("enter")
        await wait_for(lambda: app.is_running and app.return_code is None, 5, "still running")


def test_channel_bar_shows_server_strings_as_text() -> None:
    progress = RolloutProgress(TITLE, MARKUP, total=2, done=1)
    group = ServerGroupView("g", f"g{WIPE}", None, TITLE, False, {}, False, f"halted {TITLE}", progress)
    text = render_channels([ChannelView(TITLE, MARKUP, None, progress)], 160, [group]).plain
    assert escaped(TITLE) in text and MARKUP in text and escaped(WIPE) in text
    plain_text_only(text)


# --- a real terminal ---------------------------------------------------------------------------


class Tmux:
    """A tmux server of our own (private socket in tmp_path, no config file)."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str, check: bool = True) -> str:
        argv = ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=10).stdout

    def wait_for_text(self, pane: str, text: str, timeout: float, count: int = 1) -> str:
        """The pane's content once `text` is on it `count` times."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self("capture-pane", "-p", "-t", pane)
            if screen.count(text) >= count:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not drawn within {timeout}s; the pane shows:\n{screen}")
            time.sleep(0.1)  # polling the pane: tmux has no "content changed" event to wait on


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_control_characters_from_etcd_do_not_reach_the_terminal(clean_etcd: str, tmp_path: Path) -> None:
    etcd = Etcd(clean_etcd)
    etcd.node("7177e0000000000000000000000000aa", hostname=TITLE)
    etcd.node("3173e0000000000000000000000000bb", hostname=WIPE)
    tmux = Tmux(tmp_path / "tmux.sock")
    command = f"cd {ROOT} && TERM=xterm-256color exec {sys.executable} -m coreroll dash --etcd {clean_etcd}"
    tmux("new-session", "-d", "-x", "160", "-y", "48", "-s", "dash", command)
    try:
        before = tmux("display", "-p", "-t", "dash", "#{pane_title}").strip()
        tmux.wait_for_text("dash", "4152.2.3", 30, count=2)  # both rows drawn
        title = tmux("display", "-p", "-t", "dash", "#{pane_title}").strip()
        assert title != "pwned" and title == before
        screen = tmux("capture-pane", "-p", "-t", "dash")
        assert "\\x1b]0;pwned\\x07" in screen and "wipe\\x1b[2J" in screen  # shown as text
        assert "etcd: ok" in screen  # the header is still there: nothing wiped the screen
    finally:
        tmux("kill-server", check=False)  # the session may be gone already: the assertion above says why
