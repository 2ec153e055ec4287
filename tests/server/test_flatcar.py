"""The server as a real Flatcar update_engine sees it (issue 11 section 2), with update_engine's exact
request bytes (tests/omaha/fixtures.py): the payload chosen by board, extra packages listed as
Nebraska lists them, floors, machineid="", an event outside the table (3/9) beside an update check,
and synthetic payloads kept away from update_engine. Runs on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import base64
import hashlib

from lxml import etree

from coreroll.omaha.crau import PayloadChecker
from coreroll.omaha.crau_layout import Reader
from coreroll.omaha.protocol import OmahaEvent, build_request, parse_response
from coreroll.server.omaha_handler import anonymous_machine_key
from coreroll.server.runner import RunningServer
from tests.omaha.crau_builder import build_crau, fleet_key, image_bytes
from tests.omaha.fixtures import (
    UPDATE_ENGINE_ARM64_REQUEST,
    UPDATE_ENGINE_DEFERRED_CHECK,
    UPDATE_ENGINE_NO_MACHINE_ID,
    UPDATE_ENGINE_REQUEST,
)
from tests.server.helpers import (
    HTTP,
    call,
    check_status,
    get,
    instance,
    omaha,
    post,
    publish,
    publish_real,
    real_payload,
    upload,
)

MACHINE = "9ce7a919806c4f3785eb6d260345ac4a"  # the fixtures' machine id; they run 3975.2.1
ARM64_STABLE_UUID = b"11a585f6-9418-4df0-8863-78b2fd3240f8"  # Nebraska's legacy arm64 stable group


def as_machine(body: bytes, machine_id: str) -> bytes:
    return body.replace(MACHINE.encode(), machine_id.encode())


def running(body: bytes, version: str) -> bytes:
    """The request of a node running ``version`` (app version and os sp)."""
    return body.replace(b'version="3975.2.1"', f'version="{version}"'.encode()).replace(
        b'sp="3975.2.1_', f'sp="{version}_'.encode()
    )


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def b64sha1(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def offered(root: etree._Element) -> tuple[str, str, list[etree._Element]]:
    """(manifest version, codebase, packages) of an ``ok`` answer."""
    check = root.find("app/updatecheck")
    assert check.get("status") == "ok", etree.tostring(root)
    codebase = check.find("urls/url").get("codebase")
    return check.find("manifest").get("version"), codebase, check.findall("manifest/packages/package")


def test_the_payload_is_chosen_by_the_requests_board(server: RunningServer) -> None:
    amd64 = publish_real(server, "3976.0.0", "stable", board="amd64-usr")
    # The release has no arm64 payload yet: the arm64 node is told noupdate, and why.
    assert check_status(omaha(server.url, UPDATE_ENGINE_ARM64_REQUEST)) == "noupdate"
    held = instance(server, MACHINE)
    assert held["status"] == "OnHold" and held["board"] == "arm64-usr"
    assert held["status_reason"] == "release 3976.0.0 has no payload for board arm64-usr"

    arm64_bytes = real_payload("arm64 build ")
    reply = upload(
        server, "3976.0.0", arm64_bytes, board="arm64-usr", filename="flatcar_production_update.gz"
    )
    assert reply.status_code == 201, reply.text
    assert {p["board"] for p in reply.json()["payloads"]} == {"amd64-usr", "arm64-usr"}

    version, codebase, (package,) = offered(omaha(server.url, UPDATE_ENGINE_ARM64_REQUEST))
    assert version == "3976.0.0" and codebase == f"{server.url}/packages/3976.0.0/arm64-usr/"
    served = HTTP.get(codebase + package.get("name")).content
    assert served == arm64_bytes and package.get("size") == str(len(arm64_bytes))
    action = omaha(server.url, UPDATE_ENGINE_ARM64_REQUEST).find("app/updatecheck/manifest/actions/action")
    assert action.get("sha256") == b64sha256(arm64_bytes)

    # An amd64 node gets the amd64 payload; a node sending an arm64 legacy group UUID is on stable.
    _, codebase, (package,) = offered(omaha(server.url, as_machine(UPDATE_ENGINE_REQUEST, "a" * 32)))
    assert codebase.endswith("/3976.0.0/amd64-usr/")
    assert b64sha256(HTTP.get(codebase + package.get("name")).content) == amd64["payloads"][0]["sha256"]
    legacy = as_machine(UPDATE_ENGINE_ARM64_REQUEST, "b" * 32).replace(
        b'track="stable"', b'track="' + ARM64_STABLE_UUID + b'"'
    )
    _, codebase, _ = offered(omaha(server.url, legacy))
    assert codebase.endswith("/3976.0.0/arm64-usr/")
    assert instance(server, "b" * 32)["group"] == "stable"


def test_extra_packages_are_listed_after_the_payload_as_nebraska_does(server: RunningServer) -> None:
    publish_real(server, "3976.0.0", "stable")
    extras = {name: build_crau(image_bytes(name, 5000)) for name in ("oem-azure.gz", "flatcar-zfs.gz")}
    for name, data in extras.items():
        reply = upload(server, "3976.0.0", data, kind="extra", board="amd64-usr", filename=name)
        assert reply.status_code == 201, reply.text
    # An extra for another board is not listed for amd64.
    arm = build_crau(image_bytes("oem-ampere", 3000))
    assert (
        upload(server, "3976.0.0", arm, kind="extra", board="arm64-usr", filename="oem-ampere.gz").status_code
        == 201
    )

    root = omaha(server.url, UPDATE_ENGINE_REQUEST)
    _, codebase, packages = offered(root)
    assert [p.get("name") for p in packages] == [
        "flatcar_production_update.gz",
        "flatcar-zfs.gz",
        "oem-azure.gz",
    ]
    assert packages[0].get("required") == "true" and packages[0].get("hash_sha256") is None
    for package in packages[1:]:
        data = extras[package.get("name")]
        assert list(package.attrib) == ["name", "hash", "hash_sha256", "size", "required"]
        # hash: base64 SHA-1; hash_sha256: hex, as ue-rs's download_sysext reads it (omaha/src/response.rs)
        assert (
            package.get("hash") == b64sha1(data)
            and package.get("hash_sha256") == hashlib.sha256(data).hexdigest()
        )
        assert package.get("size") == str(len(data)) and package.get("required") == "false"
        assert HTTP.get(codebase + package.get("name")).content == data  # same codebase as the payload
    # What flatcar-postinst's download_sysext does with the saved answer (ue-rs): hex SHA-256 and
    # base64 SHA-1 of each package checked against the download, then the file read as a CrAU payload
    # signed by the node's update-payload-key.pub.pem.
    for package in packages[1:]:
        served = HTTP.get(codebase + package.get("name")).content
        assert bytes.fromhex(package.get("hash_sha256")) == hashlib.sha256(served).digest()
        assert base64.b64decode(package.get("hash"), validate=True) == hashlib.sha1(served).digest()
        checker = PayloadChecker(Reader.DOWNLOAD_SYSEXT, fleet_key().public_key())
        checker.feed(served)
        assert checker.finish().signature_verified
    # update_engine itself takes the first package: the payload.
    info = parse_response(etree.tostring(root))
    assert info.offer is not None and info.offer.package_name == "flatcar_production_update.gz"
    release = get(server, "/api/v1/releases")["releases"][0]
    assert sorted((e["board"], e["filename"]) for e in release["extras"]) == [
        ("amd64-usr", "flatcar-zfs.gz"), ("amd64-usr", "oem-azure.gz"), ("arm64-usr", "oem-ampere.gz")
    ]  # fmt: skip


def test_a_node_far_behind_is_offered_the_next_floor_first(server: RunningServer) -> None:
    publish_real(server, "3976.0.0", "stable")
    reply = call(server, "PUT", "/api/v1/releases/3976.0.0/floor", {"floor": True, "reason": "migrates /etc"})
    assert reply.status_code == 200 and reply.json()["floor"] is True
    publish_real(server, "3977.0.0", "alpha")  # a floor that was never on stable: no step there
    assert call(server, "PUT", "/api/v1/releases/3977.0.0/floor", {"floor": True}).status_code == 200
    publish_real(server, "3978.0.0", "stable")

    # 3975.2.1 is below the floor: it gets 3976.0.0, not the channel's 3978.0.0.
    version, _, _ = offered(omaha(server.url, UPDATE_ENGINE_REQUEST))
    assert version == "3976.0.0"
    assert instance(server, MACHINE)["last_update_version"] == "3976.0.0"
    # A node already on the floor (or past it) gets the channel's release.
    version, _, _ = offered(
        omaha(server.url, running(as_machine(UPDATE_ENGINE_REQUEST, "c" * 32), "3976.0.0"))
    )
    assert version == "3978.0.0"
    # The group's rollout is of the channel's release, the floor is a step of it.
    assert get(server, "/api/v1/groups/stable")["rollout_in_progress"] is True
    assert [a for a in get(server, "/api/v1/activity")["activity"] if a["kind"] == "RolloutStarted"][-1][
        "version"
    ] == "3978.0.0"
    # Cleared, the floor is no longer a step.
    assert call(server, "PUT", "/api/v1/releases/3976.0.0/floor", {"floor": False}).json()["floor"] is False
    version, _, _ = offered(omaha(server.url, as_machine(UPDATE_ENGINE_REQUEST, "d" * 32)))
    assert version == "3978.0.0"


def test_empty_machine_id_is_served_and_registered_by_boot_id(server: RunningServer) -> None:
    publish_real(server, "3976.0.0", "stable")
    reply = post(server.url, UPDATE_ENGINE_NO_MACHINE_ID)
    assert reply.status_code == 200
    version, _, _ = offered(etree.fromstring(reply.content))
    assert version == "3976.0.0"
    key = anonymous_machine_key("{3c9c0e11-...}", "127.0.0.1")
    assert key.startswith("anon-") and len(key) == 32
    inst = instance(server, key)
    assert inst["status"] == "UpdateGranted" and inst["version"] == "3975.2.1"
    # The same machine again is the same record (the granted offer is served again).
    offered(omaha(server.url, UPDATE_ENGINE_NO_MACHINE_ID))
    assert get(server, "/api/v1/instances")["total"] == 1


def test_event_3_9_never_fails_the_update_check_in_the_same_request(server: RunningServer) -> None:
    publish_real(server, "3976.0.0", "stable")
    reply = post(server.url, UPDATE_ENGINE_DEFERRED_CHECK)
    assert reply.status_code == 200, reply.text
    root = etree.fromstring(reply.content)
    assert [c.tag for c in root.find("app")] == ["ping", "updatecheck", "event"]
    assert root.find("app/event").get("status") == "ok"
    assert offered(root)[0] == "3976.0.0"
    (deferred,) = [h for h in instance(server, MACHINE)["history"] if h["event"] == "3/9"]
    assert deferred["errorcode"] == 40 and "DeferredForBackoff" in deferred["reason"]
    # Any other pair (here 99/12345) is recorded the same way; numbers beyond 32 bits are bad input
    # (a 400: tests/server/test_hostile_numbers.py).
    odd = UPDATE_ENGINE_DEFERRED_CHECK.replace(
        b'eventtype="3" eventresult="9"', b'eventtype="99" eventresult="12345"'
    )
    assert post(server.url, as_machine(odd, "e" * 32)).status_code == 200


def test_an_opaque_payload_is_held_back_from_update_engine_saying_why(server: RunningServer) -> None:
    reply = upload(server, "3976.0.0", b"\x1f\x8b not a CrAU payload", channel="stable", opaque="true",
                   filename="flatcar_production_update.gz")  # fmt: skip
    assert reply.status_code == 201, reply.text
    assert check_status(omaha(server.url, UPDATE_ENGINE_REQUEST)) == "noupdate"
    assert instance(server, MACHINE)["status_reason"] == (
        "release 3976.0.0 has an opaque payload for amd64-usr: only coreroll agents can apply it, "
        "not update_engine"
    )


def test_synthetic_payloads_are_offered_to_coreroll_agents_only(server: RunningServer) -> None:
    publish(server, "3976.0.0", "stable")  # a coreroll signed (synthetic) payload
    assert check_status(omaha(server.url, UPDATE_ENGINE_REQUEST)) == "noupdate"
    held = instance(server, MACHINE)
    assert held["status"] == "OnHold" and held["status_reason"] == (
        "release 3976.0.0 has a coreroll payload for amd64-usr: only coreroll agents can apply it, "
        "not update_engine"
    )
    # The agent's request: update_engine's bytes plus coreroll_agent="1" on <request>.
    agent = build_request(
        version="3975.2.1", track="stable", machineid="f" * 32, bootid="{3c9c0e11-...}", oem="ami",
        oemversion="...", alephversion="3510.2.0", board="amd64-usr", coreroll_agent=True,
        events=[OmahaEvent(3, 2, None, "")],
    )  # fmt: skip
    assert agent == as_machine(UPDATE_ENGINE_REQUEST, "f" * 32).replace(
        b'ismachine="1">', b'ismachine="1" coreroll_agent="1">'
    )
    assert offered(omaha(server.url, agent))[0] == "3976.0.0"
