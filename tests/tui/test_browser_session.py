"""A browser session of `coreroll dash --serve` (tui.browser_session), under Textual's pilot with a
real etcd: it starts read-only, the sign-in form refuses a wrong token and grants writes for the
right one, Esc or three wrong tokens keep it read-only, and the header says which. The settings
handed to a session never put the token where it could be shown. The same in a real browser:
test_browser.py."""

from __future__ import annotations

import argparse
import json

import pytest
from textual.command import CommandPalette

from coreroll.commands.dash import add_arguments
from coreroll.commands.dashboard.session import SESSION_ENV, encode_settings, session_setup, take_settings
from coreroll.secret import Secret
from coreroll.wire.keys import AUDIT_PREFIX
from tests.tui.helpers import palette_hits, screen_text, wait_for, wait_for_text
from tests.tui.live import Etcd, commands_for
from tui.browser_session import ADMIN_LABEL, READ_ONLY_LABEL, BrowserDashApp, session_app
from tui.keymap import DashAction
from tui.sample import machine_id, sample_updates
from tui.screens.sign_in import SignInScreen

TOKEN = "t0ken-for-the-browser-tests"


def dash_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.set_defaults(handler=print)  # as `coreroll dash` sets it: not JSON, never handed on
    return parser.parse_args(list(argv))


def test_a_secret_never_shows_and_compares_exactly() -> None:
    secret = Secret(TOKEN)
    assert TOKEN not in repr(secret) and TOKEN not in str(secret) and TOKEN not in f"{secret}"
    assert secret.matches(TOKEN)
    for wrong in ("", TOKEN[:-1], TOKEN + " ", TOKEN.upper(), "\udcff", "é" * 40):
        assert not secret.matches(wrong), wrong


def test_settings_leave_the_environment_and_start_read_only() -> None:
    args = dash_args("--etcd", "http://127.0.0.1:1", "--token", "on-the-command-line", "--serve", "8080")
    environ = {SESSION_ENV: encode_settings(args, TOKEN), "PATH": "/bin"}
    assert "on-the-command-line" not in environ[SESSION_ENV]  # --token is not a flag a session takes
    flags, secret = take_settings(environ)
    assert environ == {"PATH": "/bin"}  # taken out before the session runs anything
    assert flags.read_only is True and flags.token is None and flags.serve is None
    assert flags.endpoint == ["http://127.0.0.1:1"]
    assert secret is not None and secret.matches(TOKEN)


def test_with_operator_read_only_no_session_gets_a_token() -> None:
    _, secret = take_settings({SESSION_ENV: encode_settings(dash_args("--read-only"), TOKEN)})
    assert secret is None
    _, secret = take_settings({SESSION_ENV: encode_settings(dash_args(), None)})
    assert secret is None


@pytest.mark.parametrize("raw", [None, "{not json", '{"admin_token": "x"}', "[1, 2]"])
def test_bad_settings_are_refused_without_echoing_them(raw: str | None) -> None:
    environ = {} if raw is None else {SESSION_ENV: raw}
    with pytest.raises(ValueError, match=SESSION_ENV) as caught:
        take_settings(environ)
    assert '"x"' not in str(caught.value)


def session(etcd: str, token: str | None = TOKEN) -> BrowserDashApp:
    args = dash_args("--etcd", etcd, "--refresh", "0.05")
    app = session_app(*session_setup({SESSION_ENV: encode_settings(args, token)}))
    app.sources = []  # the sample fleet below, not etcd's (empty) one; writes still go to etcd
    for update in sample_updates(8):
        app.buffer.put(update)
    return app


async def type_token(pilot: object, text: str) -> None:
    await pilot.press(*text, "enter")  # type: ignore[attr-defined]


async def palette_lines(pilot: object, app: BrowserDashApp) -> list[str]:
    """The command palette's list before typing (opened with ctrl+p, then closed)."""
    await pilot.press("ctrl+p")  # type: ignore[attr-defined]
    await wait_for(lambda: CommandPalette.is_open(app), 5, "the command palette")
    await wait_for(lambda: bool(palette_hits(app)), 5, "the palette's list")
    listed = palette_hits(app)
    await pilot.press("escape")  # type: ignore[attr-defined]
    await wait_for(lambda: not CommandPalette.is_open(app), 5, "the palette to close")
    return listed


@pytest.mark.slow
async def test_the_right_token_makes_the_session_admin_and_it_writes(clean_etcd: str) -> None:
    app = session(clean_etcd)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(lambda: isinstance(app.screen, SignInScreen), 5, "the sign-in form")
        assert "Admin token" in screen_text(app)
        await type_token(pilot, "not-the-token")
        await wait_for_text(app, "token refused: 2 tries left")
        assert app.read_only and isinstance(app.screen, SignInScreen)
        await type_token(pilot, TOKEN)
        await wait_for(lambda: not isinstance(app.screen, SignInScreen), 5, "the form to close")
        text = await wait_for_text(app, f"[{ADMIN_LABEL}]")
        assert "[R]" not in text and "Unlock" in text.splitlines()[-1]
        assert app.actions is not None and not app.actions.read_only  # type: ignore[attr-defined]
        assert DashAction.UNLOCK.description in await palette_lines(pilot, app)  # signed in: listed
        await pilot.press("c")  # check the selected node: written to etcd, audited as the browser
        etcd = Etcd(clean_etcd)
        await wait_for(lambda: commands_for(etcd, machine_id(0)), 5, "the check command in etcd")
        records = [json.loads(v) for v in etcd.prefix(AUDIT_PREFIX).values()]
        assert records and records[-1]["by"].endswith(" via browser")


@pytest.mark.slow
async def test_escape_or_three_wrong_tokens_keep_the_session_read_only(clean_etcd: str) -> None:
    for keys in (["escape"], ["a", "enter", "b", "enter", "c", "enter"]):
        app = session(clean_etcd)
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(lambda app=app: isinstance(app.screen, SignInScreen), 5, "the sign-in form")
            await pilot.press(*keys)
            await wait_for(lambda app=app: not isinstance(app.screen, SignInScreen), 5, "the form to close")
            text = await wait_for_text(app, f"[{READ_ONLY_LABEL}]")
            assert "[R]" in text and "Unlock" not in text.splitlines()[-1]
            await pilot.press("c", "u", "m", "p")
            await pilot.pause()
            assert len(app.screen_stack) == 2 and app.read_only  # no dialog, nothing unlocked
            assert DashAction.UNLOCK.description not in await palette_lines(pilot, app)
        assert Etcd(clean_etcd).prefix("coreroll/") == {}, keys  # nothing written, not even audit


@pytest.mark.slow
async def test_without_an_admin_token_there_is_no_form(clean_etcd: str) -> None:
    app = session(clean_etcd, token=None)
    async with app.run_test(size=(160, 40)):
        await wait_for_text(app, f"[{READ_ONLY_LABEL}]")
        await wait_for_text(app, "node-0000")
        assert not any(isinstance(s, SignInScreen) for s in app.screen_stack)
