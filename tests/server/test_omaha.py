"""The Omaha endpoint as update_engine sees it: the reference request replayed with every response
field checked, the full update sequence through the instance statuses, rollback, and refusals.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib

import pytest
from lxml import etree

from coreroll.omaha.codes import APP_ID
from coreroll.omaha.protocol import OmahaEvent
from coreroll.server.runner import RunningServer
from tests.server.helpers import (
    HTTP,
    REFERENCE_REQUEST,
    activity_kinds,
    call,
    check_status,
    event_xml,
    get,
    instance,
    omaha,
    post,
    publish,
    publish_real,
    request_xml,
)

pytestmark = pytest.mark.slow

MACHINE = "9ce7a919806c4f3785eb6d260345ac4a"


def test_reference_request_gets_a_complete_offer(server: RunningServer) -> None:
    release = publish_real(server, "3975.3.0", "stable")
    reply = post(server.url, REFERENCE_REQUEST)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(reply.content)

    assert root.tag == "response" and root.get("protocol") == "3.0" and root.get("server") == "coreroll"
    assert 0 <= int(root.find("daystart").get("elapsed_seconds")) < 86400
    apps = root.findall("app")
    assert len(apps) == 1
    app = apps[0]
    assert app.get("appid") == APP_ID and app.get("status") == "ok"
    assert [c.tag for c in app] == ["ping", "updatecheck", "event"]
    assert app.find("ping").get("status") == "ok"
    assert app.find("event").get("status") == "ok"
    check = app.find("updatecheck")
    assert check.get("status") == "ok" and check.get("PollInterval") is None
    urls = check.findall("urls/url")
    assert [u.get("codebase") for u in urls] == [f"{server.url}/packages/3975.3.0/amd64-usr/"]
    manifest = check.find("manifest")
    assert manifest.get("version") == "3975.3.0"
    (package,) = manifest.findall("packages/package")
    assert package.get("name") == "flatcar_production_update.gz"
    assert package.get("required") == "true"
    assert int(package.get("size")) == release["size"]
    (action,) = manifest.findall("actions/action")
    assert action.get("event") == "postinstall"
    assert action.get("DisablePayloadBackoff") == "true"

    # The hashes are base64 (update_engine compares base64 SHA-256) and match the bytes served.
    payload = HTTP.get(urls[0].get("codebase") + package.get("name")).content
    assert len(payload) == int(package.get("size"))
    assert action.get("sha256") == base64.b64encode(hashlib.sha256(payload).digest()).decode()
    assert package.get("hash") == base64.b64encode(hashlib.sha1(payload).digest()).decode()
    assert payload[:12] == b"CrAU" + (1).to_bytes(8, "big")

    inst = instance(server, MACHINE)
    assert inst["status"] == "UpdateGranted" and inst["update_in_progress"] is True
    assert inst["version"] == "3975.2.1" and inst["last_update_version"] == "3975.3.0"
    assert (inst["track"], inst["group"], inst["oem"], inst["alephversion"], inst["board"]) == (
        "stable", "stable", "ami", "3510.2.0", "amd64-usr"
    )  # fmt: skip
    assert inst["ip"] == "127.0.0.1" and inst["stale"] is False


def test_full_update_sequence_moves_statuses_and_writes_activity(server: RunningServer) -> None:
    publish(server, "4000.0.0", "stable")
    old, new = "3999.0.0", "4000.0.0"
    statuses = []

    assert check_status(omaha(server.url, request_xml(MACHINE, old))) == "ok"
    statuses.append(instance(server, MACHINE)["status"])
    for etype, result in ((13, 1), (14, 1), (3, 1)):
        root = omaha(server.url, event_xml(MACHINE, old, etype, result))
        assert [e.get("status") for e in root.findall("app/event")] == ["ok"]
        assert root.find("app/updatecheck") is None
        statuses.append(instance(server, MACHINE)["status"])
    # While UPDATED_NEED_REBOOT: ping-only requests change nothing.
    ping = omaha(server.url, request_xml(MACHINE, old, updatecheck=False, previous=None))
    assert ping.find("app/ping").get("status") == "ok"
    assert instance(server, MACHINE)["status"] == "Installed"
    # Reboot into the new version: the first check carries 3/2 with previousversion = old.
    root = omaha(server.url, request_xml(MACHINE, new, previous=old))
    assert check_status(root) == "noupdate"
    final = instance(server, MACHINE)
    statuses.append(final["status"])

    assert statuses == ["UpdateGranted", "Downloading", "Downloaded", "Installed", "Complete"]
    assert final["version"] == new and final["update_in_progress"] is False
    history = [h["status"] for h in final["history"]][::-1]
    assert history == ["UpdateGranted", "Downloading", "Downloaded", "Installed", "Complete"]
    assert final["history"][0]["event"] == "3/2"
    kinds = activity_kinds(server)
    assert kinds[-2:] == ["RolloutStarted", "RolloutFinished"]
    group = get(server, "/api/v1/groups/stable")
    assert group["rollout_in_progress"] is False
    # Later checks on the new version: up to date, nothing new recorded.
    assert check_status(omaha(server.url, request_xml(MACHINE, new))) == "noupdate"
    assert len(instance(server, MACHINE)["history"]) == 5


def test_recheck_while_granted_re_serves_the_offer(server: RunningServer) -> None:
    publish(server, "4000.0.0", "stable")
    first = omaha(server.url, request_xml(MACHINE, "3999.0.0"))
    again = omaha(server.url, request_xml(MACHINE, "3999.0.0"))
    assert check_status(again) == "ok"
    assert again.find("app/updatecheck/manifest").get("version") == first.find(
        "app/updatecheck/manifest"
    ).get("version")
    # Mid-download a check is answered noupdate and the status is kept.
    omaha(server.url, event_xml(MACHINE, "3999.0.0", 13, 1))
    assert check_status(omaha(server.url, request_xml(MACHINE, "3999.0.0"))) == "noupdate"
    assert instance(server, MACHINE)["status"] == "Downloading"


def test_failed_update_reports_error_and_activity(server: RunningServer) -> None:
    publish(server, "4000.0.0", "stable")
    omaha(server.url, request_xml(MACHINE, "3999.0.0"))
    omaha(server.url, event_xml(MACHINE, "3999.0.0", 13, 1))
    omaha(server.url, event_xml(MACHINE, "3999.0.0", 3, 0, errorcode=10))
    inst = instance(server, MACHINE)
    assert inst["status"] == "Error" and inst["update_in_progress"] is False
    assert "PayloadHashMismatch" in inst["status_reason"]
    assert inst["history"][0]["errorcode"] == 10
    failed = get(server, "/api/v1/activity")["activity"][-1]
    assert failed["kind"] == "InstanceUpdateFailed" and failed["severity"] == "error"
    assert failed["instance"] == MACHINE and failed["version"] == "4000.0.0"
    # As in Nebraska, the next check goes to the policy again (tests/server/test_rollout.py: the
    # retry counts toward the group's limits, and in safe mode the failure has halted the group).
    assert check_status(omaha(server.url, request_xml(MACHINE, "3999.0.0"))) == "ok"


def test_rollback_is_detected(server: RunningServer) -> None:
    publish(server, "4000.0.0", "stable")
    omaha(server.url, request_xml(MACHINE, "3999.0.0"))
    for etype in (13, 14, 3):
        omaha(server.url, event_xml(MACHINE, "3999.0.0", etype, 1))
    # The new partition failed to boot: still on 3999, the check carries 3/0 errorcode 44 instead of 3/2.
    body = request_xml(MACHINE, "3999.0.0", events=[OmahaEvent(3, 0, 44, None)])
    root = omaha(server.url, body)
    assert check_status(root) == "noupdate"
    inst = instance(server, MACHINE)
    assert inst["status"] == "Error" and inst["version"] == "3999.0.0"
    assert inst["status_reason"].startswith("rollback:") and "RollbackError" in inst["status_reason"]
    assert activity_kinds(server)[-1] == "InstanceUpdateFailed"


def test_unknown_app_and_unknown_track(server: RunningServer) -> None:
    publish(server, "4000.0.0", "stable")
    other = request_xml(MACHINE, "3999.0.0").replace(
        APP_ID.encode(), b"{87efface-864d-49a5-9bb3-4b050a7c227a}"
    )
    app = omaha(server.url, other).find("app")
    assert app.get("status") == "error-unknownApplication"
    assert app.find("updatecheck").get("status") == "error-internal"
    app = omaha(server.url, request_xml(MACHINE, "3999.0.0", track="nightly")).find("app")
    assert app.get("status") == "error-unknownApplicationOrGroup"
    assert get(server, "/api/v1/instances")["total"] == 0
    # A legacy CoreOS group UUID is the stable track.
    legacy = request_xml(MACHINE, "3999.0.0", track="{9a2deb70-37be-4026-853f-bfdd6b347bbe}")
    assert check_status(omaha(server.url, legacy)) == "ok"
    assert instance(server, MACHINE)["group"] == "stable"


# the legacy edge group UUIDs of amd64 and arm64, as old machines send them
EDGE_UUIDS = ("{72834a2b-ad86-4d6d-b498-e08a19ebe54e}", "b4b2fa22-c1ea-498c-a8ac-c1dc0b1d7c17")


def test_the_retired_edge_channel_is_held_not_an_error(server: RunningServer) -> None:
    """CoreOS's edge track (by name or legacy UUID) with no group for it: noupdate and a hold reason
    (before: error-unknownApplicationOrGroup, which update_engine counts as error 34 at every check)."""
    publish(server, "4000.0.0", "stable")
    for n, track in enumerate(("edge", *EDGE_UUIDS)):
        machine = f"e{n}" * 16
        app = omaha(server.url, request_xml(machine, "3999.0.0", track=track)).find("app")
        assert app.get("status") == "ok" and app.find("updatecheck").get("status") == "noupdate"
        held = instance(server, machine)
        assert held["status"] == "OnHold" and held["group"] is None and held["track"] == track
        assert held["status_reason"] == (
            "track edge (CoreOS's retired edge channel): no group has track edge; "
            "create one on a channel edge to serve these machines"
        )
    # Its events are recorded like anyone's (here a 3/0 while nothing is in progress).
    omaha(server.url, event_xml("e0" * 16, "3999.0.0", 3, 0, errorcode=9, track="edge"))
    assert instance(server, "e0" * 16)["history"][0]["event"] == "3/0"
    # With a channel edge and a group on it, those machines are served.
    assert call(server, "PUT", "/api/v1/channels/edge", {"version": "4000.0.0"}).status_code == 200
    created = call(server, "POST", "/api/v1/groups", {"id": "edge", "channel": "edge"})
    assert created.status_code == 201, created.text
    for n, track in enumerate(("edge", *EDGE_UUIDS)):
        assert check_status(omaha(server.url, request_xml(f"e{n}" * 16, "3999.0.0", track=track))) == "ok"
        assert instance(server, f"e{n}" * 16)["group"] == "edge"


def test_up_to_date_instance_gets_noupdate_and_no_release_means_noupdate(server: RunningServer) -> None:
    assert check_status(omaha(server.url, request_xml(MACHINE, "3999.0.0"))) == "noupdate"
    assert instance(server, MACHINE)["status"] == "Undefined"
    publish(server, "3999.0.0", "stable")
    assert check_status(omaha(server.url, request_xml(MACHINE, "3999.0.0"))) == "noupdate"
    assert check_status(omaha(server.url, request_xml("other", "4100.0.0"))) == "noupdate"


def test_identical_bodies_are_answered_from_the_current_state(server: RunningServer) -> None:
    """The server parses a repeated body once; the answer still follows the server's state."""
    body = request_xml(MACHINE, "3999.0.0")
    assert check_status(omaha(server.url, body)) == "noupdate"
    publish(server, "4000.0.0")
    assert check_status(omaha(server.url, body)) == "ok"
    assert check_status(omaha(server.url, body)) == "ok"  # granted: offered again
    call(server, "POST", "/api/v1/groups/stable/pause")
    assert check_status(omaha(server.url, request_xml("other", "3999.0.0"))) == "noupdate"


def test_added_channel_and_group(server: RunningServer) -> None:
    publish(server, "4000.0.0", "alpha")
    assert call(server, "PUT", "/api/v1/channels/edge", {"version": "4000.0.0"}).json()["name"] == "edge"
    created = call(server, "POST", "/api/v1/groups", {"id": "lab", "track": "lab-track", "channel": "edge",
                                                      "policy": {"max_concurrent": 5}})  # fmt: skip
    assert created.status_code == 201 and created.json()["policy"]["max_concurrent"] == 5
    assert [c["name"] for c in get(server, "/api/v1/channels")["channels"]] == [
        "alpha",
        "beta",
        "stable",
        "edge",
    ]
    assert check_status(omaha(server.url, request_xml("lab1", "3999.0.0", track="lab-track"))) == "ok"
    assert instance(server, "lab1")["group"] == "lab"
    assert call(server, "POST", "/api/v1/groups", {"id": "lab2", "track": "lab-track"}).status_code == 409
