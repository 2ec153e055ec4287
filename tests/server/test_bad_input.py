"""Bad input: each answered with a clear error, nothing recorded, and the next valid request served."""

from __future__ import annotations

from pathlib import Path

import pytest

from coreroll.omaha.payload import build_payload, generate_private_key
from coreroll.server.runner import RunningServer
from tests.server.conftest import start
from tests.server.helpers import HTTP, call, check_status, get, omaha, post, publish, request_xml

pytestmark = pytest.mark.slow

GOOD = request_xml("0123456789abcdef0123456789abcdef", "3999.0.0")
APP = 'appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="3999.0.0" track="stable"'

BAD_OMAHA = {
    "malformed xml": b'<?xml version="1.0"?><request protocol="3.0"><app',
    "not xml at all": b"GET / HTTP/1.1",
    "dtd": b'<?xml version="1.0"?><!DOCTYPE request [<!ELEMENT request ANY>]><request protocol="3.0"/>',
    "external entity (xxe)": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<request protocol="3.0"><app ' + APP.encode() + b' machineid="&xxe;"/></request>'
    ),
    "billion laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode()
            for i in range(1, 10)
        )
        + b']><request protocol="3.0"><app '
        + APP.encode()
        + b' machineid="&lol9;"/></request>'
    ),
    "1 MiB body": b'<?xml version="1.0"?><request protocol="3.0">' + b" " * (1024 * 1024) + b"</request>",
    "wrong protocol version": GOOD.replace(b'protocol="3.0"', b'protocol="2.0"'),
    "non-integer event type": GOOD.replace(b'eventtype="3"', b'eventtype="three"'),
    "empty body": b"",
}


@pytest.mark.parametrize("case", sorted(BAD_OMAHA))
def test_bad_omaha_input_is_400_and_changes_nothing(sqlite_server: RunningServer, case: str) -> None:
    server = sqlite_server
    publish(server, "4000.0.0")
    head = get(server, "/api/v1/info")["feed_id"]
    reply = post(server.url, BAD_OMAHA[case])
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.text.startswith("bad omaha request: ")
    assert len(reply.text) < 300 and "Traceback" not in reply.text and "root:" not in reply.text
    assert get(server, "/api/v1/info")["feed_id"] == head  # nothing recorded
    assert get(server, "/api/v1/instances")["total"] == 0
    # The next valid request is served normally.
    assert check_status(omaha(server.url, GOOD)) == "ok"


def test_error_messages_name_the_problem(sqlite_server: RunningServer) -> None:
    reasons = {case: post(sqlite_server.url, body).text for case, body in BAD_OMAHA.items()}
    assert "65536" in reasons["1 MiB body"]
    assert "2.0" in reasons["wrong protocol version"]
    assert "passwd" not in reasons["external entity (xxe)"]


def test_publish_with_a_wrong_signature_is_refused(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    foreign = build_payload(b"image bytes" * 100, "4100.0.0", generate_private_key())
    reply = HTTP.post(
        f"{server.url}/api/v1/releases",
        params={"version": "4100.0.0", "channel": "stable"},
        content=foreign,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/octet-stream"},
    )
    assert reply.status_code == 422
    assert "18" in reply.json()["error"] and "DownloadPayloadPubKeyVerificationError" in reply.json()["error"]
    assert get(server, "/api/v1/releases")["releases"] == []
    assert get(server, "/api/v1/channels")["channels"][2]["version"] is None
    assert not (server.settings.data_dir / "packages" / "4100.0.0").exists()
    # A payload whose bytes were altered after signing is refused too.
    own = HTTP.post(f"{server.url}/api/v1/releases", json={"version": "4101.0.0", "synthetic": True},
                    headers={"Authorization": f"Bearer {server.token}"})  # fmt: skip
    assert own.status_code == 201
    good = HTTP.get(own.json()["url"]).content
    tampered = good[:-300] + bytes([good[-300] ^ 1]) + good[-299:]
    reply = HTTP.post(
        f"{server.url}/api/v1/releases", params={"version": "4102.0.0"}, content=tampered,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert reply.status_code == 422
    # Bytes that are not an update_engine payload (CrAU version 1) are refused, nothing stored ...
    upload = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/octet-stream"}
    params = {"version": "4103.0.0", "filename": "flatcar_production_update.gz"}
    reply = HTTP.post(
        f"{server.url}/api/v1/releases", params=params, content=b"\x1f\x8b not ours", headers=upload
    )
    assert reply.status_code == 422 and "CrAU" in reply.json()["error"] and "opaque" in reply.json()["error"]
    crau2 = b"CrAU" + (2).to_bytes(8, "big") + b"x" * 100
    reply = HTTP.post(f"{server.url}/api/v1/releases", params=params, content=crau2, headers=upload)
    assert reply.status_code == 422 and "version 2" in reply.json()["error"]
    assert get(server, "/api/v1/releases")["releases"][0]["version"] == "4101.0.0"
    # ... unless published opaque: then only hashed, and offered to coreroll agents only.
    reply = HTTP.post(f"{server.url}/api/v1/releases", params={**params, "opaque": "true"},
                      content=b"\x1f\x8b not ours", headers=upload)  # fmt: skip
    assert reply.status_code == 201 and reply.json()["signed"] is False
    assert reply.json()["payloads"][0]["format"] == "opaque"
    assert check_status(omaha(server.url, GOOD)) == "noupdate"  # nothing was put on stable


@pytest.mark.parametrize("token", [None, "wrong-token", "server-token-as-basic"])
def test_admin_without_or_with_wrong_token_is_401_and_changes_nothing(
    sqlite_server: RunningServer, token: str | None
) -> None:
    server = sqlite_server
    before = (
        get(server, "/api/v1/groups"),
        get(server, "/api/v1/channels"),
        get(server, "/api/v1/info")["feed_id"],
    )
    attempts = [
        ("POST", "/api/v1/releases", {"version": "4000.0.0", "synthetic": True, "channel": "stable"}),
        ("PUT", "/api/v1/groups/stable/policy", {"max_updates_per_period": 1}),
        ("POST", "/api/v1/groups/stable/pause", None),
        ("PUT", "/api/v1/channels/stable", {"version": "4000.0.0"}),
        ("POST", "/api/v1/groups", {"id": "canary"}),
    ]
    for method, path, body in attempts:
        if token == "server-token-as-basic":  # the right secret under another scheme
            headers = {"Authorization": f"Basic {server.token}"}
            reply = HTTP.request(method, f"{server.url}{path}", json=body, headers=headers)
        else:
            reply = call(server, method, path, body, token=token)
        assert reply.status_code == 401, (path, reply.text)
        assert reply.headers["www-authenticate"] == "Bearer"
        assert "token" in reply.json()["error"]
    after = (
        get(server, "/api/v1/groups"),
        get(server, "/api/v1/channels"),
        get(server, "/api/v1/info")["feed_id"],
    )
    assert after == before
    assert get(server, "/api/v1/releases")["releases"] == []
    assert call(server, "POST", "/api/v1/groups/stable/pause").status_code == 200  # the right token works


def test_range_requests(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    release = publish(server, "4000.0.0")
    url, size = release["url"], release["size"]
    whole = HTTP.get(url)
    assert whole.status_code == 200 and len(whole.content) == size
    assert whole.headers["accept-ranges"] == "bytes"
    part = HTTP.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{size}"
    tail = HTTP.get(url, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == whole.content[-5:]
    resume = HTTP.get(url, headers={"Range": f"bytes={size - 3}-"})
    assert resume.content == whole.content[-3:]
    beyond = HTTP.get(url, headers={"Range": f"bytes={size}-{size + 10}"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert "beyond" in beyond.json()["error"]
    assert HTTP.get(f"{server.url}/packages/4000.0.0/../../token").status_code == 404
    assert HTTP.get(f"{server.url}/packages/9999.0.0/update.gz").status_code == 404
    assert HTTP.get(url).status_code == 200  # still served normally


def test_bad_admin_bodies_name_the_problem(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    reply = call(server, "PUT", "/api/v1/groups/stable/policy", {"max_updates_per_period": "two"})
    assert reply.status_code == 400 and "max_updates_per_period" in reply.json()["error"]
    reply = call(server, "PUT", "/api/v1/groups/stable/policy", {"speed": 1})
    assert reply.status_code == 400 and "speed" in reply.json()["error"]
    reply = call(server, "PUT", "/api/v1/groups/stable/policy", {"timezone": "Mars/Olympus"})
    assert reply.status_code == 400 and "Mars/Olympus" in reply.json()["error"]
    reply = HTTP.put(f"{server.url}/api/v1/groups/stable/policy", content=b"{not json",
                     headers={"Authorization": f"Bearer {server.token}"})  # fmt: skip
    assert reply.status_code == 400 and "JSON" in reply.json()["error"]
    assert call(server, "PUT", "/api/v1/groups/nope/policy", {}).status_code == 404
    assert call(server, "PUT", "/api/v1/channels/stable", {"version": "1.2.3"}).status_code == 404
    assert get(server, "/api/v1/groups/stable")["policy"]["max_updates_per_period"] == 999999


def test_one_source_cannot_register_unlimited_machines(tmp_path: Path, sqlite_url: str) -> None:
    server = start(tmp_path, sqlite_url, new_instances_per_source=3, trusted_proxies=("127.0.0.1/32",))
    try:
        statuses = [
            HTTP.post(f"{server.url}/v1/update/", content=request_xml(f"flood{n}", "3999.0.0"),
                      headers={"X-Forwarded-For": "203.0.113.9"}).text.count("error-instanceRegistrationFailed")
            for n in range(5)
        ]  # fmt: skip
        assert statuses == [0, 0, 0, 1, 1]
        assert get(server, "/api/v1/instances")["total"] == 3
        other = HTTP.post(f"{server.url}/v1/update/", content=request_xml("honest", "3999.0.0"),
                          headers={"X-Forwarded-For": "198.51.100.1"})  # fmt: skip
        assert "error-instanceRegistrationFailed" not in other.text
        again = HTTP.post(f"{server.url}/v1/update/", content=request_xml("flood0", "3999.0.0"),
                          headers={"X-Forwarded-For": "203.0.113.9"})  # fmt: skip
        assert "error-instanceRegistrationFailed" not in again.text  # known machines are served
    finally:
        server.stop()


def test_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    from coreroll.cli import main
    from coreroll.server.auth import TokenFileError, load_or_create_token
    from coreroll.server.settings import ServerSettings

    settings = ServerSettings(data_dir=tmp_path)
    token = load_or_create_token(settings)
    assert oct(settings.token_path.stat().st_mode & 0o777) == "0o600"
    settings.token_path.chmod(0o644)
    with pytest.raises(TokenFileError, match="chmod 600"):
        load_or_create_token(settings)
    assert settings.token_path.read_text().strip() == token  # not rewritten
    assert main(["server", "--data", str(tmp_path), "--listen", "127.0.0.1:1"]) == 1


def test_forwarded_for_is_ignored_without_a_trusted_proxy(sqlite_server: RunningServer) -> None:
    HTTP.post(f"{sqlite_server.url}/v1/update/", content=request_xml("xff", "3999.0.0"),
              headers={"X-Forwarded-For": "203.0.113.7"})  # fmt: skip
    assert get(sqlite_server, "/api/v1/instances/xff")["ip"] == "127.0.0.1"


def test_a_slash_in_a_path_value_is_not_taken_for_a_trailing_slash(sqlite_server: RunningServer) -> None:
    # A machine id or group id of "/" (sent as %2F) is unknown: 404, not a redirect to the list.
    for path in (
        "/api/v1/instances/%2F",
        "/api/v1/groups/%2F",
        "/api/v1/instances/%2F%2F",
        "/api/v1/releases//",
    ):
        reply = HTTP.get(f"{sqlite_server.url}{path}")
        assert reply.status_code == 404, (path, reply.status_code, reply.headers.get("location"))
        assert reply.json()["error"], path
    # A real trailing slash still moves to the path without it, and one missing is added.
    moved = HTTP.get(f"{sqlite_server.url}/api/v1/releases/")
    assert moved.status_code == 307 and moved.headers["location"] == f"{sqlite_server.url}/api/v1/releases"
    assert HTTP.get(f"{sqlite_server.url}/api/v1/instances/xff").status_code == 404
