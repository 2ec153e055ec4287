"""A fixture upstream for the sync tests: an Omaha server and a package host on 127.0.0.1.

``FixtureUpstream`` answers ``POST /v1/update/`` as Nebraska answers a syncer (flatcar/nebraska
backend/pkg/omaha/omaha.go ``prepareMultiManifestUpdateCheck``: with ``multi_manifest_ok="true"``,
one ``<manifest>`` per floor above the requested version and the target, ``is_floor``/``floor_reason``/
``is_target`` as go-omaha writes them, and one ``<urls>``, the target's) and serves each file at
``/<board>/<version>/<name>`` (GET and HEAD), laid out as Flatcar's release server does. The answer's
shape is Nebraska's public answer for 3732.0.0 (ue-rs src/testdata/omaha-response-example.xml):
``hash`` base64 SHA-1, extras with hex ``hash_sha256``, the postinstall action's base64 ``sha256``.

Faults: ``corrupt`` (file names whose bytes differ from what the answer declares), ``pause_at``
(a download stops after that many bytes until ``resume`` is set; ``paused`` says it got there),
``die_at`` (the connection is reset after that many bytes: upstream dies mid-download).
``requests`` keeps every request body, ``downloads`` every GET path. ``publish(channel, board,
release)`` adds a release while it runs (bench/omaha.py's ``--sync`` runs use it).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree

from coreroll.server.versions import version_key
from tests.omaha.crau_builder import build_crau, image_bytes

PAYLOAD_NAME = "flatcar_production_update.gz"


@dataclass
class UpstreamRelease:
    version: str
    floor: bool = False
    floor_reason: str = ""
    extras: tuple[str, ...] = ()


def _sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass
class FixtureUpstream:
    channels: dict[tuple[str, str], list[UpstreamRelease]]  # (channel, board) -> releases
    files: dict[str, bytes] = field(default_factory=dict)  # "<board>/<version>/<name>" -> bytes
    corrupt: set[str] = field(default_factory=set)
    pause_at: dict[str, int] = field(default_factory=dict)
    die_at: dict[str, int] = field(default_factory=dict)
    requests: list[bytes] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    paused: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        for (_, board), releases in self.channels.items():
            for release in releases:
                self._add_files(board, release)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _add_files(self, board: str, release: UpstreamRelease) -> None:
        for name in (PAYLOAD_NAME, *release.extras):
            key = f"{board}/{release.version}/{name}"
            if key not in self.files:
                self.files[key] = build_crau(image_bytes(f"{key} ", 3000))

    def publish(self, channel: str, board: str, release: UpstreamRelease) -> None:
        """A new release upstream while it runs (its files first, then the answer offers it)."""
        self._add_files(board, release)
        self.channels[(channel, board)] = [*self.channels.get((channel, board), []), release]

    def stop(self) -> None:
        self.resume.set()
        self._server.shutdown()
        self._server.server_close()

    # ---- the Omaha answer --------------------------------------------------------------------
    def answer(self, body: bytes) -> bytes:
        self.requests.append(body)
        app = etree.fromstring(body).find("app")
        assert app is not None
        key = (app.get("track", ""), app.get("board", ""))
        current = app.get("version", "0.0.0")
        newer = [r for r in self.channels.get(key, []) if version_key(r.version) > version_key(current)]
        head = ('<?xml version="1.0" encoding="UTF-8"?>\n<response protocol="3.0" server="nebraska">'
                '<daystart elapsed_seconds="0"></daystart>'
                '<app appid="e96281a6-d1af-4bde-9a0a-97b76e56dc57" status="ok">')  # fmt: skip
        if key not in self.channels:
            return (
                head.replace('status="ok">', 'status="error-unknownApplication">') + "</app></response>"
            ).encode()
        if not newer:
            return (head + '<updatecheck status="noupdate"></updatecheck></app></response>').encode()
        newer.sort(key=lambda r: version_key(r.version))
        target = newer[-1]
        if app.get("multi_manifest_ok") == "true":
            offered = [r for r in newer[:-1] if r.floor] + [target]
        else:
            offered = [next((r for r in newer if r.floor), target)]
        board = key[1]
        parts = [head, '<updatecheck status="ok"><urls>',
                 f'<url codebase="{self.url}/{board}/{offered[-1].version}/"></url></urls>']  # fmt: skip
        for release in offered:
            parts.append(self._manifest(board, release, release is target and len(offered) > 1))
        parts.append("</updatecheck></app></response>\n")
        return "".join(parts).encode()

    def _declared(self, board: str, version: str, name: str) -> bytes:
        return self.files[f"{board}/{version}/{name}"]

    def _manifest(self, board: str, release: UpstreamRelease, target: bool) -> str:
        flags = ""
        if release.floor:
            flags += f' is_floor="true" floor_reason="{release.floor_reason}"'
        if target:
            flags += ' is_target="true"'
        payload = self._declared(board, release.version, PAYLOAD_NAME)
        packages = [f'<package name="{PAYLOAD_NAME}" hash="{_sha1_b64(payload)}" size="{len(payload)}" '
                    'required="true"></package>']  # fmt: skip
        for name in release.extras:
            data = self._declared(board, release.version, name)
            packages.append(f'<package name="{name}" hash="{_sha1_b64(data)}" '
                            f'hash_sha256="{hashlib.sha256(data).hexdigest()}" size="{len(data)}" '
                            'required="false"></package>')  # fmt: skip
        return (f'<manifest version="{release.version}"{flags}><packages>{"".join(packages)}</packages>'
                f'<actions><action event="postinstall" sha256="{_sha256_b64(payload)}" '
                'DisablePayloadBackoff="true"></action></actions></manifest>')  # fmt: skip

    # ---- the files ---------------------------------------------------------------------------
    def served(self, path: str) -> bytes | None:
        data = self.files.get(path)
        if data is not None and path.rpartition("/")[2] in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])  # same size, other bytes
        return data


def _handler(upstream: FixtureUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = upstream.answer(body)
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def _head(self) -> bytes | None:
            data = upstream.served(self.path.lstrip("/"))
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return data

        def do_HEAD(self) -> None:
            self._head()

        def do_GET(self) -> None:
            data = self._head()
            if data is None:
                return
            name = self.path.rpartition("/")[2]
            upstream.downloads.append(self.path.lstrip("/"))
            if name in upstream.pause_at:
                self.wfile.write(data[: upstream.pause_at[name]])
                self.wfile.flush()
                upstream.paused.set()
                upstream.resume.wait(30)
                data = data[upstream.pause_at[name] :]
            if name in upstream.die_at:
                self.wfile.write(data[: upstream.die_at[name]])
                self.wfile.flush()
                # RST instead of FIN: the connection dies as it does when upstream is killed
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            self.wfile.write(data)

    return Handler
