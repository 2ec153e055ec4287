"""`coreroll dash --serve` (tui.serve) without a browser: the listen address, and the real HTTP
server refusing what must not start a session (a Host that is not this machine, a websocket from
another site's page, one session too many) before any dashboard process runs. The browser itself:
test_browser.py."""

from __future__ import annotations

import argparse
import base64
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from coreroll.commands.dash import add_arguments
from coreroll.commands.dashboard.session import SESSION_ENV, serve_setup, session_command, take_settings
from tui import serve
from tui.serve import DashServer, host_allowed, parse_listen, public_origin, same_origin


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080", ("127.0.0.1", 8080)),
        (":8080", ("127.0.0.1", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("localhost:9000", ("localhost", 9000)),
    ],
)
def test_listen_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [("80a", "'80a' is not a number"), ("host:", "'' is not a number"), ("70000", "outside 0-65535"),
     ("::1:8080", "in brackets")],
)  # fmt: skip
def test_a_bad_listen_address_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="--serve") as caught:
        parse_listen(text)
    assert problem in str(caught.value)


def test_on_loopback_only_names_of_this_machine_are_answered() -> None:
    for host in ("127.0.0.1:8080", "localhost:9000", "LOCALHOST", "[::1]:8080", "127.0.0.2"):
        assert host_allowed(host, "127.0.0.1"), host
    for host in ("evil.example:8080", "evil.example", "10.0.0.5:8080", "", None, "127.0.0.1.evil.example"):
        assert not host_allowed(host, "127.0.0.1"), host
    assert host_allowed("dash.example.org", "0.0.0.0")  # told to listen beyond loopback


def test_a_session_opens_only_from_the_same_origin() -> None:
    assert same_origin("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert same_origin("https://dash.example.org", "dash.example.org")  # behind a TLS proxy
    for origin in ("http://evil.example", "http://127.0.0.1:3000", "null", "", None):
        assert not same_origin(origin, "127.0.0.1:8080"), origin


def test_behind_a_proxy_the_public_address_is_answered_too() -> None:
    public = public_origin("https://Dash.Example.org/coreroll/")
    assert public == "https://dash.example.org"
    assert host_allowed("dash.example.org", "127.0.0.1", public)
    assert not host_allowed("other.example.org", "127.0.0.1", public)
    for bad in ("dash.example.org", "ftp://dash.example.org", "https://", "https://user@evil.example"):
        with pytest.raises(ValueError, match="--serve-public-url"):
            public_origin(bad)


def test_sessions_inherit_no_token_of_their_own_and_the_command_holds_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--etcd", "http://127.0.0.1:1", "--serve", "0"])
    environ = {"COREROLL_TOKEN": "from-env", "TEXTUAL_LOG": "keys.log", "TEXTUAL": "debug", "HOME": "/root"}
    monkeypatch.setenv("COREROLL_TOKEN", "from-env")
    plan = serve_setup(args)
    assert plan.has_admin_token
    assert environ["COREROLL_TOKEN"] == "from-env"  # nothing changes before serving starts
    plan.prepare_environment(environ)
    assert set(environ) == {"HOME", SESSION_ENV}
    assert "from-env" not in session_command()
    _, secret = take_settings(dict(environ))
    assert secret is not None and secret.matches("from-env")


@pytest.fixture
async def server() -> AsyncIterator[DashServer]:
    # `false`: were a session started after all, it would end at once
    dash = DashServer("false", "127.0.0.1", 0)
    runner = await dash.start()
    try:
        yield dash
    finally:
        await runner.cleanup()


def upgrade(origin: str | None) -> dict[str, str]:
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    if origin is not None:
        headers["Origin"] = origin
    return headers


async def test_the_page_is_served_whole_from_here(server: DashServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get("/?fontsize=<script>")
        assert page.status_code == 200
        assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
        assert (
            '"static/js/textual.js"' in page.text
            and "<script>" not in page.text.split("data-font-size")[1][:20]
        )
        assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
        for path in (
            "/static/js/textual.js",
            "/static/css/xterm.css",
            "/static/fonts/RobotoMono-VariableFont_wght.ttf",
        ):
            assert (await http.get(path)).status_code == 200, path


async def test_a_host_that_is_not_this_machine_is_refused(server: DashServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get("/", headers={"Host": "rebound.evil.example"})
        assert page.status_code == 403 and "does not name" in page.text
        ws = await http.get(
            "/ws", headers={**upgrade("http://rebound.evil.example"), "Host": "rebound.evil.example"}
        )
        assert ws.status_code == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:1", "null", None])
async def test_a_websocket_from_another_page_is_refused(server: DashServer, origin: str | None) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        reply = await http.get("/ws", headers=upgrade(origin))
    assert reply.status_code == 403 and "own page" in reply.text
    assert server.sessions == set()


async def test_sessions_beyond_the_cap_are_refused(
    server: DashServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serve, "MAX_SESSIONS", 0)
    async with httpx.AsyncClient(base_url=server.url) as http:
        reply = await http.get("/ws", headers=upgrade(server.url.rstrip("/")))
    assert reply.status_code == 503 and "sessions open already" in reply.text


async def test_behind_a_proxy_a_session_opens_from_the_public_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "MAX_SESSIONS", 0)  # 503 (not 403): the origin was accepted
    dash = DashServer("false", "127.0.0.1", 0, public_origin("https://dash.example.org"))
    runner = await dash.start()
    try:
        async with httpx.AsyncClient(base_url=dash.url) as http:
            # a proxy that passes the Host it was asked for, and one that does not
            for host in ("dash.example.org", dash.url.split("//")[1].rstrip("/")):
                reply = await http.get("/ws", headers={**upgrade("https://dash.example.org"), "Host": host})
                assert reply.status_code == 503, host
            reply = await http.get("/ws", headers=upgrade("http://dash.example.org"))  # not https
            assert reply.status_code == 403
    finally:
        await runner.cleanup()
