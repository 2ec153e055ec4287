"""The update server's defences, against the real server (uvicorn on 127.0.0.1, SQLite file):
admin token required on every admin route and compared in constant time, token and signing-key
files 0600 and refused when readable by others, the instance table bounded against a flood of
machine ids from one source, X-Forwarded-For trusted only from configured proxies."""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coreroll.cli import main
from coreroll.omaha.client import build_request
from coreroll.omaha.payload import KeyFileError, load_private_key
from coreroll.server import api_admin, auth
from coreroll.server.runner import RunningServer, free_port, run_server_in_thread
from coreroll.server.settings import ServerSettings
from tests.faults.counts import check, record

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def omaha_check(machine_id: str, track: str = "stable", version: str = "1000.0.0") -> bytes:
    return build_request(
        version=version, track=track, machineid=machine_id, bootid=str(uuid.uuid4()),
        oem="qemu", oemversion="1", alephversion="1000.0.0", board="amd64-usr",
    )  # fmt: skip


def app_status(xml: str) -> str:
    match = re.search(r'<app [^>]*status="([^"]+)"', xml)
    assert match, xml
    return match.group(1)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with run_server_in_thread(ServerSettings(data_dir=tmp_path / "data")) as running:
        yield running


def world_state(url: str) -> dict[str, object]:
    """Everything an admin call could change, as the read API shows it."""
    out = {}
    for path in ("channels", "groups", "releases", "activity"):
        doc = httpx.get(f"{url}/api/v1/{path}", timeout=10).json()
        doc.pop("feed_id", None)
        out[path] = doc
    return out


# ---- admin token ----

ADMIN_BODIES = {
    "/api/v1/releases": {"version": "9.9.9", "synthetic": True, "channel": "stable"},
    "/api/v1/channels/{name}": {"version": "9.9.9"},
    "/api/v1/releases/{version}/promote": {"to": "beta"},
    "/api/v1/releases/{version}/floor": {"floor": True, "reason": "evil"},
    "/api/v1/groups": {"id": "evil", "name": "Evil", "track": "evil", "channel": "stable"},
    "/api/v1/groups/{group_id}/policy": {"updates_enabled": False},
    "/api/v1/groups/{group_id}/pause": {},
    "/api/v1/groups/{group_id}/resume": {},
    "/api/v1/channels/{name}/pin": {"version": "9.9.9"},
    "/api/v1/sync": {},
}
PATH_VALUES = {"name": "stable", "version": "9.9.9", "group_id": "stable"}


def admin_routes() -> list[tuple[str, str]]:
    routes = []
    for route in api_admin.router.routes:
        for method in sorted(getattr(route, "methods", ()) or ()):
            routes.append((method, route.path))  # type: ignore[attr-defined]
    return routes


def test_every_admin_route_is_known_to_this_test() -> None:
    # A new admin route must be added to ADMIN_BODIES, so the token test below covers it.
    assert {path for _, path in admin_routes()} <= set(ADMIN_BODIES), admin_routes()
    assert len(admin_routes()) >= 7


def test_admin_routes_refuse_missing_or_wrong_token_and_change_nothing(server: RunningServer) -> None:
    before = world_state(server.url)
    token = server.token
    bad_headers = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {token[:-1]}"},  # a prefix of the right token
        {"Authorization": f"Bearer {token}x"},  # the right token plus one byte
        {"Authorization": f"Basic {token}"},  # the right secret, wrong scheme
        {"Authorization": f"Bearer {token.upper() if token.upper() != token else token.lower()}"},
    ]
    tried = 0
    for method, path in admin_routes():
        url = server.url + path.format(**PATH_VALUES)
        for headers in bad_headers:
            reply = httpx.request(method, url, json=ADMIN_BODIES[path], headers=headers, timeout=10)
            assert reply.status_code == 401, (method, path, headers, reply.text)
            assert reply.headers.get("www-authenticate", "").lower().startswith("bearer")
            assert "error" in reply.json()
            assert token not in reply.text
            tried += 1
    record("admin_calls_without_valid_token", tried, suite="security")
    changed = [k for k, v in world_state(server.url).items() if v != before[k]]
    assert check("refused_admin_call_changed_nothing", changed, suite="security") == []  # not even activity
    # and the right token does work (so the 401s above were about the token)
    ok = httpx.post(
        f"{server.url}/api/v1/groups/stable/pause", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert ok.status_code == 200 and ok.json()["policy"]["updates_enabled"] is False


def test_token_is_compared_in_constant_time() -> None:
    tree = ast.parse(inspect.getsource(auth.token_matches))
    calls = {
        f"{node.func.value.id}.{node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    }
    assert calls & {"hmac.compare_digest", "secrets.compare_digest"}, calls
    compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]
    for node in compares:  # no `given == token` anywhere in it
        names = {getattr(x, "id", getattr(x, "attr", "")) for x in [node.left, *node.comparators]}
        assert not names & {"token", "given"}, ast.unparse(node)
    # and admin requests really go through it
    assert "token_matches" in inspect.getsource(api_admin.require_admin)


def test_no_token_compared_with_equals_anywhere_in_the_server() -> None:
    root = Path(auth.__file__).parent
    offenders = []
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                text = ast.unparse(node)
                if re.search(r"\btoken\b", text) and "None" not in text:
                    offenders.append(f"{path.name}: {text}")
    assert offenders == []


# ---- secret files ----


def test_generated_token_file_is_0600(server: RunningServer) -> None:
    path = server.settings.token_path
    assert path.read_text().strip() == server.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(server.token) >= 32


def test_a_generated_token_never_reads_as_a_command_line_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # one token in 64 would start with "-", and `--token -x...` then fails to parse (seen in CI)
    drawn = iter(["-starts-with-a-dash", "plain-token"])
    monkeypatch.setattr(auth.secrets, "token_urlsafe", lambda _n: next(drawn))
    assert auth.new_token() == "plain-token"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_token_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    first = auth.load_or_create_token(settings)
    settings.token_path.chmod(mode)
    with pytest.raises(auth.TokenFileError, match="chmod 600"):
        auth.load_or_create_token(settings)
    record("insecure_secret_files_refused", suite="security")
    assert settings.token_path.read_text().strip() == first  # not rewritten either


def test_server_will_not_start_with_a_world_readable_token_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    auth.load_or_create_token(ServerSettings(data_dir=data))
    (data / "token").chmod(0o644)
    done = subprocess.run(
        [sys.executable, "-m", "coreroll", "server", "--data", str(data), "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if k != "COREROLL_TOKEN"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and "listening on" not in line]
    assert len(lines) == 1 and "chmod 600" in lines[0], done.stderr
    record("insecure_secret_files_refused", suite="security")


def test_keygen_writes_private_key_0600(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keys"
    assert main(["server", "keygen", "--out", str(out)]) == 0
    private = out / "update-payload-key.pem"
    public = out / "update-payload-key.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert stat.S_IMODE(out.stat().st_mode) & 0o077 == 0
    load_private_key(private)
    # a second keygen never overwrites the key
    before = private.read_bytes()
    assert main(["server", "keygen", "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert private.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_private_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    out = tmp_path / "keys"
    assert main(["server", "keygen", "--out", str(out)]) == 0
    private = out / "update-payload-key.pem"
    private.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_private_key(private)
    record("insecure_secret_files_refused", suite="security")


def test_server_will_not_sign_with_a_world_readable_key(server: RunningServer) -> None:
    key_dir = server.settings.key_dir
    assert main(["server", "keygen", "--out", str(key_dir)]) == 0
    (key_dir / "update-payload-key.pem").chmod(0o644)
    before = world_state(server.url)
    reply = httpx.post(
        f"{server.url}/api/v1/releases",
        json={"version": "2000.0.0", "synthetic": True, "channel": "stable"},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    assert reply.status_code >= 400, reply.text
    assert "chmod 600" in reply.json()["error"]  # the operator is told what to fix
    assert world_state(server.url) == before  # no release stored, channel not moved
    record("insecure_secret_files_refused", suite="security")


# ---- Omaha flood ----


def test_instance_table_is_capped_against_a_flood(tmp_path: Path) -> None:
    cap = 25
    settings = ServerSettings(data_dir=tmp_path / "data", instance_cap=cap)
    with run_server_in_thread(settings) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        statuses = []
        for n in range(cap + 40):  # one source, ever new machine ids
            reply = http.post("/v1/update/", content=omaha_check(f"flood-{n:04d}"))
            assert reply.status_code == 200
            statuses.append(app_status(reply.text))
        record("omaha_flood_requests", len(statuses), suite="security")
        assert statuses[:cap] == ["ok"] * cap
        assert set(statuses[cap:]) == {"error-instanceRegistrationFailed"}
        total = http.get("/api/v1/instances", params={"limit": 1000}).json()["total"]
        assert (
            check("instance_table_within_cap", [f"{total} > {cap}"] if total > cap else [], suite="security")
            == []
        )
        assert total == cap
        # a machine registered before the flood is still served normally
        again = http.post("/v1/update/", content=omaha_check("flood-0000"))
        assert app_status(again.text) == "ok"
        # and refused ones left nothing behind
        assert http.get(f"/api/v1/instances/flood-{cap + 1:04d}").status_code == 404


async def test_instance_cap_holds_under_concurrent_registrations(tmp_path: Path) -> None:
    cap = 25
    settings = ServerSettings(data_dir=tmp_path / "data", instance_cap=cap)
    with run_server_in_thread(settings) as server:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
            replies = await asyncio.gather(
                *(http.post("/v1/update/", content=omaha_check(f"race-{n:04d}")) for n in range(200))
            )
            record("omaha_flood_requests", len(replies), suite="security")
            accepted = sum(app_status(r.text) == "ok" for r in replies)
            total = (await http.get("/api/v1/instances", params={"limit": 1000})).json()["total"]
    problems = (
        [f"{total} instances stored, {accepted} accepted, cap {cap}"] if max(total, accepted) > cap else []
    )
    assert check("instance_cap_holds_under_concurrency", problems, suite="security") == []


def test_one_source_cannot_take_every_slot(tmp_path: Path) -> None:
    # the source is the client behind a trusted proxy (loopback itself is exempt: the fleet runs there)
    settings = ServerSettings(
        data_dir=tmp_path / "data",
        instance_cap=1000,
        new_instances_per_source=10,
        trusted_proxies=("127.0.0.1/32",),
    )
    with run_server_in_thread(settings) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        flood = [
            app_status(http.post("/v1/update/", content=omaha_check(f"f-{n}"),
                                 headers={"X-Forwarded-For": "203.0.113.9"}).text)
            for n in range(30)
        ]  # fmt: skip
        record("omaha_flood_requests", len(flood), suite="security")
        assert flood[:10] == ["ok"] * 10 and set(flood[10:]) == {"error-instanceRegistrationFailed"}
        assert http.get("/api/v1/instances", params={"limit": 1000}).json()["total"] == 10
        again = http.post(
            "/v1/update/", content=omaha_check("f-0"), headers={"X-Forwarded-For": "203.0.113.9"}
        )
        assert app_status(again.text) == "ok"  # machines it already registered keep working
        honest = http.post(
            "/v1/update/", content=omaha_check("honest"), headers={"X-Forwarded-For": "198.51.100.1"}
        )
        assert app_status(honest.text) == "ok"


# ---- X-Forwarded-For ----


def instance_ip(http: httpx.Client, machine_id: str) -> str:
    return str(http.get(f"/api/v1/instances/{machine_id}").json()["ip"])


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        ((), "203.0.113.7", "127.0.0.1"),  # no trusted proxy: the header is ignored
        (("10.0.0.0/8",), "203.0.113.7", "127.0.0.1"),  # the peer is not a trusted proxy
        (("127.0.0.1/32",), "203.0.113.7", "203.0.113.7"),  # a trusted proxy's word is taken
        (("127.0.0.1/32",), "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # a client-forged first hop is not
        (("127.0.0.1/32", "10.0.0.0/8"), "203.0.113.7, 10.1.2.3", "203.0.113.7"),  # chain of proxies
        (("127.0.0.1/32",), "not-an-ip", "not-an-ip"),
    ],
)
def test_x_forwarded_for_is_trusted_only_from_configured_proxies(
    tmp_path: Path, trusted: tuple[str, ...], forwarded: str, expected: str
) -> None:
    settings = ServerSettings(data_dir=tmp_path / "data", trusted_proxies=trusted)
    with run_server_in_thread(settings) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        reply = http.post(
            "/v1/update/", content=omaha_check("xff-node"), headers={"X-Forwarded-For": forwarded}
        )
        assert reply.status_code == 200
        record("forwarded_headers_tried", suite="security")
        if expected == "not-an-ip":
            # garbage from a trusted proxy must not crash anything; what is stored must not be a forged IP
            assert instance_ip(http, "xff-node") in ("127.0.0.1", "not-an-ip")
        else:
            got = instance_ip(http, "xff-node")
            check("client_ip_only_from_trusted_proxies", [] if got == expected else [f"{forwarded}: {got}"],
                  suite="security")  # fmt: skip
            assert got == expected


def test_spoofed_forwarded_for_cannot_touch_admin(server: RunningServer) -> None:
    reply = httpx.post(
        f"{server.url}/api/v1/groups/stable/pause",
        headers={"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
        timeout=10,
    )
    assert reply.status_code == 401


# ---- payload downloads stay inside the packages directory ----

TRAVERSALS = [
    "/packages/%2e%2e/token", "/packages/%2e%2e/%2e%2e/token", "/packages/x/..%2ftoken", "/packages/..%2f..%2ftoken",
    "/packages/%2e%2e/keys/update-payload-key.pem", "/packages/..%2fkeys%2fupdate-payload-key.pem",
    "/packages/%2e%2e/coreroll.db", "/packages//etc/passwd", "/packages/x/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/packages/%252e%252e/token", "/packages/2000.0.0/..%2f..%2ftoken",
]  # fmt: skip


def test_package_downloads_cannot_leave_the_packages_directory(server: RunningServer) -> None:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
    ) as http:
        assert (
            http.post("/api/v1/releases", json={"version": "2000.0.0", "synthetic": True}).status_code == 201
        )
        secrets_on_disk = [
            server.token.encode(),
            (server.settings.key_dir / "update-payload-key.pem").read_bytes(),
        ]
    leaks = []
    for path in TRAVERSALS:
        for method in ("GET", "HEAD"):
            reply = httpx.request(method, server.url + path, timeout=10)
            record("path_traversals_tried", suite="security")
            if (
                reply.status_code != 404
                or any(s in reply.content for s in secrets_on_disk)
                or b"root:" in reply.content
            ):
                leaks.append(f"{method} {path} -> {reply.status_code}")
    assert check("package_paths_stay_inside", leaks, suite="security") == []
