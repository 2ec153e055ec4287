"""The server behind a real TLS-terminating nginx (deploy/coreroll-nginx.conf's server block), as
deploy/coreroll-server.service runs it (issue 15 section 2): the payload URL a node gets through the
proxy is one it can download over the proxy's scheme, with --public-url or with the proxy's
X-Forwarded-Proto/-Host from a --trusted-proxy; forwarded headers from anyone else are ignored."""

from __future__ import annotations

import shlex
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from coreroll.cli import build_parser, main
from coreroll.server import command as server_command
from coreroll.server.runner import RunningServer, free_port
from tests.omaha.fixtures import UPDATE_ENGINE_REQUEST
from tests.security.certs import Pki, make_pki
from tests.server.conftest import start
from tests.server.helpers import HTTP, real_payload, wait_until
from tests.server.nginx import Nginx

VERSION = "3976.0.0"
PAYLOAD = real_payload("through the proxy ", 20_000)
EXTRA = real_payload("oem sysext ", 4000)  # ue-rs and the upload check want CrAU v1 for extras too
XML = {"Content-Type": "text/xml"}

Behind = Callable[..., tuple[RunningServer, Nginx]]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def behind_nginx(tmp_path: Path, sqlite_url: str, pki: Pki) -> Iterator[Behind]:
    """``behind_nginx(public=False, **settings)``: a server behind nginx on a free port; with
    ``public=True`` the server's --public-url is nginx's https URL."""
    with ExitStack() as stack:

        def make(public: bool = False, **settings: Any) -> tuple[RunningServer, Nginx]:
            port = free_port()
            if public:
                settings["public_url"] = f"https://127.0.0.1:{port}"
            server = start(tmp_path, sqlite_url, **settings)
            stack.callback(server.stop)
            proxy = Nginx(tmp_path / "nginx", port, server.url, pki.server_cert, pki.server_key)
            stack.callback(proxy.stop)
            return server, proxy

        yield make


def client(pki: Pki) -> httpx.Client:
    """A node or an admin on the far side of the proxy: it trusts the proxy's CA, nothing else."""
    return httpx.Client(verify=ssl.create_default_context(cafile=pki.ca), timeout=15)


def publish_through(http: httpx.Client, proxy: Nginx, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
    url = f"{proxy.url}/api/v1/releases"
    params = {"version": VERSION, "channel": "stable", "filename": "flatcar_production_update.gz"}
    reply = http.post(url, params=params, content=PAYLOAD, headers=headers)
    assert reply.status_code == 201, reply.text
    extra = {"version": VERSION, "kind": "extra", "filename": "oem-azure.gz"}
    assert http.post(url, params=extra, content=EXTRA, headers=headers).status_code == 201
    return dict(reply.json())


def codebase_and_names(http: httpx.Client, url: str) -> tuple[str, list[str]]:
    reply = http.post(f"{url}/v1/update/", content=UPDATE_ENGINE_REQUEST, headers=XML)
    assert reply.status_code == 200, reply.text
    check = etree.fromstring(reply.content).find("app/updatecheck")
    assert check.get("status") == "ok", reply.text
    names = [p.get("name") for p in check.findall("manifest/packages/package")]
    return check.find("urls/url").get("codebase"), names


def assert_downloadable(http: httpx.Client, codebase: str, names: list[str]) -> None:
    """What update_engine does with the answer: each package from the codebase, resumed by Range."""
    assert names == ["flatcar_production_update.gz", "oem-azure.gz"]
    whole = http.get(codebase + names[0])
    assert whole.status_code == 200 and whole.content == PAYLOAD
    part = http.get(codebase + names[0], headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == PAYLOAD[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(PAYLOAD)}"
    assert http.get(codebase + names[1]).content == EXTRA


def test_public_url_behind_a_tls_proxy(behind_nginx: Behind, pki: Pki) -> None:
    server, proxy = behind_nginx(public=True, trusted_proxies=("127.0.0.1/32",))
    with client(pki) as http:
        published = publish_through(http, proxy, server.token)
        assert published["url"] == f"{proxy.url}/packages/{VERSION}/amd64-usr/flatcar_production_update.gz"
        codebase, names = codebase_and_names(http, proxy.url)
        assert codebase == f"{proxy.url}/packages/{VERSION}/amd64-usr/"
        assert_downloadable(http, codebase, names)
        # Every other link too: the JSON API's package links and a redirect's Location.
        (release,) = http.get(f"{proxy.url}/api/v1/releases").json()["releases"]
        links = [release["url"], *(f["url"] for f in release["payloads"] + release["extras"])]
        assert all(link.startswith(f"{proxy.url}/packages/{VERSION}/") for link in links), links
        moved = http.get(f"{proxy.url}/api/v1/releases/")
        assert moved.status_code == 307 and moved.headers["location"] == f"{proxy.url}/api/v1/releases"
    # A node that reaches the server directly is still told the public URL.
    assert codebase_and_names(HTTP, server.url)[0] == codebase


def test_forwarded_proto_and_host_from_a_trusted_proxy(behind_nginx: Behind, pki: Pki) -> None:
    server, proxy = behind_nginx(trusted_proxies=("127.0.0.1/32",))
    with client(pki) as http:
        published = publish_through(http, proxy, server.token)
        assert published["payloads"][0]["url"].startswith(f"{proxy.url}/packages/")
        codebase, names = codebase_and_names(http, proxy.url)
        assert codebase == f"{proxy.url}/packages/{VERSION}/amd64-usr/"
        assert_downloadable(http, codebase, names)
        (release,) = http.get(f"{proxy.url}/api/v1/snapshot").json()["releases"]
        assert release["extras"][0]["url"] == f"{proxy.url}/packages/{VERSION}/amd64-usr/oem-azure.gz"
    # Asked directly, the server answers with its own address.
    assert codebase_and_names(HTTP, server.url)[0] == f"{server.url}/packages/{VERSION}/amd64-usr/"


def test_forwarded_headers_from_an_untrusted_proxy_are_ignored(behind_nginx: Behind, pki: Pki) -> None:
    """nginx is not a --trusted-proxy here: its X-Forwarded-Proto is not believed (the node is
    told plain http to nginx's TLS port; only --public-url or --trusted-proxy mends that)."""
    server, proxy = behind_nginx(trusted_proxies=("10.0.0.0/8",))
    with client(pki) as http:
        publish_through(http, proxy, server.token)
        codebase, _ = codebase_and_names(http, proxy.url)
    assert codebase == f"{proxy.url.replace('https://', 'http://')}/packages/{VERSION}/amd64-usr/"


UNTRUSTED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


@pytest.mark.parametrize(
    ("trusted", "cases"),
    [
        ((), [(UNTRUSTED, None)]),
        (("10.0.0.0/8",), [(UNTRUSTED, None)]),
        (("127.0.0.1/32",), [
            # from a trusted proxy, only a scheme of http/https and a well-formed host[:port] count
            ({"X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "a b/c"}, None),
            ({"X-Forwarded-Host": "evil.example:99999"}, None),
            ({"X-Forwarded-Proto": "HTTPS, http", "X-Forwarded-Host": "u.example:8443, x"}, "https://u.example:8443"),
            ({"X-Forwarded-Host": "[2001:db8::1]:8443"}, "http://[2001:db8::1]:8443"),
        ]),
    ],
)  # fmt: skip
def test_which_forwarded_headers_are_believed(
    tmp_path: Path, sqlite_url: str, trusted: tuple[str, ...], cases: list[tuple[dict[str, str], str | None]]
) -> None:
    server = start(tmp_path, sqlite_url, trusted_proxies=trusted)
    try:
        reply = HTTP.post(
            f"{server.url}/api/v1/releases",
            json={"synthetic": True, "version": VERSION, "channel": "stable"},
            headers={"Authorization": f"Bearer {server.token}"},
        )
        assert reply.status_code == 201, reply.text
        for headers, origin in cases:
            listed = HTTP.get(f"{server.url}/api/v1/releases", headers=headers).json()["releases"][0]["url"]
            assert listed.startswith(f"{origin or server.url}/packages/{VERSION}/"), (headers, listed)
    finally:
        server.stop()


def test_public_url_with_a_path(tmp_path: Path, sqlite_url: str) -> None:
    """A proxy serving coreroll under /coreroll/ (and stripping it): links and redirects keep the path."""
    public = "https://updates.example/coreroll"
    server = start(tmp_path, sqlite_url, public_url=public + "/")
    try:
        reply = HTTP.post(f"{server.url}/api/v1/releases", content=PAYLOAD,
                          params={"version": VERSION, "channel": "stable", "filename": "update.gz"},
                          headers={"Authorization": f"Bearer {server.token}",
                                   "Content-Type": "application/octet-stream"})  # fmt: skip
        assert reply.json()["url"] == f"{public}/packages/{VERSION}/amd64-usr/update.gz"
        reply = HTTP.post(f"{server.url}/v1/update/", content=UPDATE_ENGINE_REQUEST, headers=XML)
        codebase = etree.fromstring(reply.content).find("app/updatecheck/urls/url").get("codebase")
        assert codebase == f"{public}/packages/{VERSION}/amd64-usr/"
        moved = HTTP.get(f"{server.url}/api/v1/releases/")
        assert moved.headers["location"] == f"{public}/api/v1/releases"
    finally:
        server.stop()


def test_server_flags_for_a_proxy_are_checked_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --db is refused right after the settings: a flag not checked would let the start get that far
    data = ["--data", str(tmp_path / "data"), "--db", "mysql://x"]
    cases = {
        "--public-url 'ftp://updates.example'": ["--public-url", "ftp://updates.example"],
        "--public-url 'updates.example'": ["--public-url", "updates.example"],
        "no query": ["--public-url", "https://updates.example/?x=1"],
        "--trusted-proxy '10.0.0.0/33'": ["--trusted-proxy", "10.0.0.0/33"],
        "--trusted-proxy 'proxy.internal'": ["--forwarded-allow-ips", "127.0.0.1,proxy.internal"],
    }
    for expected, flags in cases.items():
        assert main(["server", *data, *flags]) == 2, flags
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "data").exists()  # nothing created for a refused start


def test_server_starts_in_a_new_data_dir_and_says_what_nodes_are_told(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"  # neither exists yet
    port = free_port()
    argv = [sys.executable, "-m", "coreroll", "server", "--listen", f"127.0.0.1:{port}", "--data", str(data),
            "--token", "T"]  # fmt: skip
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:  # ends when the server exits (before the fix: exit 1 at once)
            lines.append(line)
            if "no --public-url" in line:
                break
        said = "".join(lines)
        assert "no --public-url: nodes are told to download from the origin of their own request" in said, (
            said
        )
        assert f"that is http://127.0.0.1:{port}/packages/..., the node's own loopback" in said
        assert (data / "coreroll.db").exists() and oct(data.stat().st_mode & 0o777) == "0o700"
        assert wait_until(lambda: healthy(f"http://127.0.0.1:{port}"), 20, "the server to answer")
    finally:
        process.terminate()
        process.wait(timeout=15)


def healthy(url: str) -> bool:
    try:
        return HTTP.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_uvicorns_forwarded_allow_ips_adds_trusted_proxies() -> None:
    from coreroll.server.forwarded import startup_note

    args = build_parser().parse_args(
        ["server", "--trusted-proxy", "::1", "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8"]
    )
    settings = server_command._settings(args)
    assert settings.trusted_proxies == ("::1", "127.0.0.1", "10.0.0.0/8")
    note = startup_note("127.0.0.1:8400", None, settings.trusted_proxies)
    assert note is not None and "X-Forwarded-Proto/-Host from ::1, 127.0.0.1, 10.0.0.0/8" in note
    assert startup_note("0.0.0.0:8400", None, ()) is None  # nodes reach it at the address they were given
    assert startup_note("[::1]:8400", "https://u.example", ()) == (
        "every URL handed out starts with https://u.example (--public-url)"
    )


def test_the_systemd_units_server_command_line_is_accepted() -> None:
    """deploy/coreroll-server.service's ExecStart, continuation lines joined, parses into settings."""
    unit = (Path(__file__).resolve().parents[2] / "deploy" / "coreroll-server.service").read_text()
    (line,) = [x for x in unit.replace("\\\n", " ").splitlines() if x.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart="))[1:]
    settings = server_command._settings(build_parser().parse_args(argv))
    assert settings.public_url == "https://coreroll.example.internal"
    assert settings.trusted_proxies == ("127.0.0.1",) and settings.listen == "127.0.0.1:8400"
