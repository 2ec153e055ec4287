"""`coreroll dash --serve [HOST:]PORT`: the same dashboard in a browser, served with textual-serve.

    coreroll dash --serve 8080 --etcd http://10.0.0.5:2379       # http://127.0.0.1:8080/

The page is xterm.js (textual-serve's static files) with a template of our own (`templates/`).
Each websocket the page opens starts one dashboard process, `setup.session_command`
(`python -m coreroll.commands.dashboard.session`; textual-serve's AppService relays its terminal), so
every tab is its own session with the same keys and screens as the terminal dashboard. What to
serve comes as a `coreroll.watch.setup.ServeSetup` from `coreroll.commands.dashboard.session`, which
also put the sessions' settings into this process's environment. Every session starts read-only and asks for the admin
token in a sign-in form inside the app (`tui.screens.sign_in`); Esc keeps it read-only.

Where the admin token goes (it is the dashboard's own, found as the terminal dashboard finds it:
--token, COREROLL_TOKEN, else the update server's token file):
- to each session process in its environment (COREROLL_BROWSER_SESSION, with the other flags,
  put there by `coreroll.commands.dashboard.session`), which only the same user can read and which the
  session removes at start; never on a command line (`ps` shows those to every user) nor in a URL;
- from the browser only inside the websocket, as keystrokes into the sign-in form. The server logs
  request lines (method, path, status), never what it relays;
- COREROLL_TOKEN, TEXTUAL_LOG and TEXTUAL are removed from this process's environment before
  serving: a session must not find the token by itself, and Textual's log would record every key.

Why a form and not a token in the URL fragment: the browser never sends the fragment, so the page
would need script of its own to read it and type it into the session; textual-serve's page has no
such hook, and a token in a URL ends up in history and bookmarks. The form works in any browser.

Requests are checked before a session starts: the page and the websocket only for a Host that names
this machine when it listens on loopback (DNS rebinding), the websocket only from a page of the
same origin (any other site the operator has open could otherwise open it), and at most
MAX_SESSIONS sessions at once (each is a process). Behind a TLS proxy, `--serve-public-url
https://dash.example.org` names the address browsers use: its host is answered and its origin may
open sessions (the page always connects back to the address it was loaded from).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from coreroll.watch.setup import ServeSetup
from tui.run import check_keys_and_theme

DEFAULT_HOST = "127.0.0.1"
MAX_SESSIONS = 8
TEMPLATES = Path(__file__).with_name("templates")

SESSION_EXIT_TIMEOUT = 10.0  # seconds a session process gets to exit after its quit message
# textual-serve's private names used here (tests/tui/test_serve_compat.py checks each still exists):
# Server._process_messages (the page's key/resize relay), Server._make_app (the aiohttp app) and
# AppService._process (the session process: textual-serve stops reading it at EOF, not at its exit)
HOOKED_SERVE = {Server: ("_process_messages", "_make_app"), AppService: ("_process",)}

log = logging.getLogger("coreroll.serve")


def parse_listen(text: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[IPV6]:PORT` -> (host, port); a bare port listens on 127.0.0.1."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = DEFAULT_HOST, value
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"--serve {text!r}: write an IPv6 address in brackets, e.g. [::1]:8080")
    if not host:
        host = DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"--serve {text!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"--serve {text!r}: port {port} is outside 0-65535")
    return host, port


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(authority: str) -> str:
    """`host[:port]` or `[v6][:port]` -> the host, lower case."""
    name = authority.strip().lower()
    if name.startswith("["):
        return name[1 : name.find("]")] if "]" in name else name
    return name.rsplit(":", 1)[0] if name.count(":") == 1 else name


def public_origin(url: str) -> str:
    """--serve-public-url -> the origin browsers send from it (`https://dash.example.org`)."""
    scheme, sep, rest = url.strip().partition("://")
    authority = rest.split("/", 1)[0].lower()
    if not sep or scheme.lower() not in ("http", "https") or not authority or "@" in authority:
        raise ValueError(
            f"--serve-public-url {url!r}: give the address browsers use, e.g. https://dash.example.org"
        )
    return f"{scheme.lower()}://{authority}"


def host_allowed(host_header: str | None, listen_host: str, public: str | None = None) -> bool:
    """A Host header we answer: any when told to listen beyond loopback; on loopback only names of
    this machine (or the --serve-public-url's host), so a web page cannot reach the dashboard
    through a name it rebinds to 127.0.0.1."""
    if not is_loopback(listen_host):
        return True
    if not host_header:
        return False
    name = host_name(host_header)
    return is_loopback(name) or (public is not None and name == host_name(public.split("://", 1)[1]))


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """The websocket comes from our own page: its Origin's host[:port] is the Host it asked for."""
    if not origin or not host_header or "://" not in origin:
        return False
    return origin.split("://", 1)[1].rstrip("/").lower() == host_header.strip().lower()


class DashServer(Server):
    """textual-serve's server with our page, the checks above and a session cap."""

    def __init__(self, command: str, host: str, port: int, public: str | None = None) -> None:
        super().__init__(command, host=host, port=port, title="coreroll", templates_path=TEMPLATES)
        self.public = public  # the origin browsers use behind a proxy (public_origin)
        self.sessions: set[web.WebSocketResponse] = set()
        self.url = ""

    def _refuse(self, request: web.Request) -> web.Response | None:
        if not host_allowed(request.headers.get("Host"), self.host, self.public):
            log.warning("refused %s %s: Host %r does not name this machine", request.method, request.path,
                        request.headers.get("Host"))  # fmt: skip
            return web.Response(
                status=403, text="coreroll: this address does not name the dashboard's host\n"
            )
        return None

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        font_size = max(6, min(self._int(request.query.get("fontsize"), 16), 48))
        context = {
            "title": "coreroll",
            "font_size": font_size,
            "static": "static/",
        }  # relative: a proxy may add a prefix
        response = aiohttp_jinja2.render_template("browser.html", request, context)
        response.headers.update(
            {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
        )
        return response

    def _origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        if same_origin(origin, host_header):
            return True
        return (
            self.public is not None
            and origin is not None
            and origin.strip().rstrip("/").lower() == self.public
        )

    @staticmethod
    def _int(text: str | None, default: int) -> int:
        try:
            return int(text) if text is not None else default
        except ValueError:
            return default

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        refused = self._refuse(request)
        if refused is not None:
            raise web.HTTPForbidden(text=refused.text)
        if not self._origin_allowed(request.headers.get("Origin"), request.headers.get("Host")):
            log.warning("refused a session: Origin %r is not this page's", request.headers.get("Origin"))
            raise web.HTTPForbidden(text="coreroll: sessions open only from the dashboard's own page\n")
        if len(self.sessions) >= MAX_SESSIONS:
            log.warning("refused a session: %d open already", len(self.sessions))
            raise web.HTTPServiceUnavailable(text=f"coreroll: {MAX_SESSIONS} browser sessions open already\n")
        width = max(20, min(self._int(request.query.get("width"), 80), 1000))
        height = max(5, min(self._int(request.query.get("height"), 24), 500))
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        self.sessions.add(websocket)
        log.info("session opened from %s (%d open)", request.remote, len(self.sessions))

        async def close() -> None:  # AppService awaits a close that returns None
            await websocket.close()

        service = AppService(
            self.command,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=close,
            download_manager=self.download_manager,
        )
        try:
            await service.start(width, height)
            await self._process_messages(websocket, service)  # textual-serve's relay: keys, resize
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a malformed message from the page ends that session only
            log.warning("session ended: %s: %s", type(exc).__name__, exc)
        finally:
            self.sessions.discard(websocket)
            await service.stop()
            await _session_exited(service)
            await websocket.close()
            log.info("session closed (%d open)", len(self.sessions))
        return websocket

    async def on_startup(self, app: web.Application) -> None:
        """textual-serve prints a banner here; we say where we listen once the port is bound."""

    async def on_shutdown(self, app: web.Application) -> None:
        # close the browsers' websockets: each session's handler then stops its dashboard process
        await asyncio.gather(*(ws.close() for ws in list(self.sessions)), return_exceptions=True)

    async def start(self) -> web.AppRunner:
        """Listen; sets `url` (with the port chosen when asked for port 0)."""
        runner = web.AppRunner(await self._make_app(), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}/"
        return runner


async def _session_exited(service: AppService) -> None:
    """Until the session's process has exited: textual-serve's `stop` returns once the process
    closes its output, which it does before it exits, so a stopping server would otherwise leave
    sessions behind for a moment (or for good, if one hangs while exiting)."""
    process = service._process
    if process is None or process.returncode is not None:
        return
    try:
        await asyncio.wait_for(process.wait(), SESSION_EXIT_TIMEOUT)
    except TimeoutError:
        log.warning("session process %d did not exit after quit: killing it", process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def serve(setup: ServeSetup) -> int:
    host, port = parse_listen(setup.listen)
    public = public_origin(setup.public_url) if setup.public_url else None
    check_keys_and_theme(setup.keymap_path, setup.theme)  # a bad key map fails once, not in every tab
    setup.prepare_environment(os.environ)
    server = DashServer(setup.session_command, host, port, public)
    try:
        runner = await server.start()
    except OSError as exc:
        print(f"coreroll dash: cannot listen on {setup.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    if setup.read_only:
        access = "every session read-only (--read-only)"
    elif setup.has_admin_token:
        access = "read-only until the admin token is given in the sign-in form"
    else:
        access = "every session read-only: no admin token (--token, COREROLL_TOKEN, server token file)"
    print(f"coreroll dash: serving the dashboard on {server.url} ({access}); Ctrl+C stops", flush=True)
    if public:
        print(f"coreroll dash: browsers come through {public}", flush=True)
    if not is_loopback(host):
        print("coreroll dash: WARNING: listening beyond loopback over plain HTTP: the token crosses the "
              "network in clear; put a TLS proxy in front", file=sys.stderr, flush=True)  # fmt: skip
    try:
        await stop.wait()
    finally:
        print("coreroll dash: stopping: closing browser sessions", flush=True)
        await runner.cleanup()
    return 0


def serve_dashboard(setup: ServeSetup) -> int:
    """Serve until SIGINT/SIGTERM/SIGHUP; ValueError for a bad listen address, public URL, key map or theme."""
    # plain log lines on stderr: no tracebacks with local variables (textual-serve's own handler
    # shows them, and a session's environment holds the token)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    return asyncio.run(serve(setup))
