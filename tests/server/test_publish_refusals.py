"""Publishes the server refuses with a 4xx naming the reason, through the real server (issue 16):
a coreroll payload whose manifest is nested 60,000 deep, and an admin JSON body nested as deep
(defect 11: before, a 500 from RecursionError); extra packages published with a channel for a
release that has no payload, and pointing or promoting a channel to such a release (defect 12:
before, the channel offered a release with nothing to install and every node of it was put on
hold), at the API and in `coreroll release publish`."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from coreroll.cli import main
from coreroll.omaha.payload import (
    PAYLOAD_VERSION,
    ErrorCode,
    PayloadError,
    generate_private_key,
    verify_payload,
)
from coreroll.server.runner import RunningServer
from tests.omaha.crau_builder import build_crau, image_bytes
from tests.server.helpers import (
    HTTP,
    REFERENCE_REQUEST,
    call,
    check_status,
    get,
    omaha,
    publish_real,
    upload,
)

DEPTH = 60_000


def deep_payload() -> bytes:
    """A coreroll container whose manifest is ``[`` nested DEPTH deep (it fits the 64 KiB limit)."""
    manifest = b"[" * DEPTH
    return b"CrAU" + struct.pack(">QQ", PAYLOAD_VERSION, len(manifest)) + manifest + b"image"


def test_a_manifest_nested_60000_deep_is_refused_not_a_500(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    reply = upload(server, "4300.0.0", deep_payload(), channel="stable")
    assert reply.status_code == 422, reply.text
    assert (
        "nested too deeply" in reply.json()["error"] and "DownloadManifestParseError" in reply.json()["error"]
    )
    assert get(server, "/api/v1/releases")["releases"] == []
    # An agent verifying such a download reports the manifest error (21) instead of crashing.
    with pytest.raises(PayloadError) as refused:
        verify_payload(deep_payload(), generate_private_key().public_key())
    assert refused.value.code is ErrorCode.DownloadManifestParseError
    # An admin JSON body nested as deep (under the 1 MiB body limit): a 400 naming it.
    reply = HTTP.post(f"{server.url}/api/v1/groups", content=b"[" * 200_000,
                      headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})  # fmt: skip
    assert reply.status_code == 400 and "nested too deeply" in reply.json()["error"]


EXTRA = build_crau(image_bytes("an oem sysext", 2000))  # what download_sysext accepts


def channel_version(server: RunningServer, name: str) -> str | None:
    return next(c["version"] for c in get(server, "/api/v1/channels")["channels"] if c["name"] == name)


def test_extras_alone_never_move_a_channel(sqlite_server: RunningServer) -> None:
    server = sqlite_server
    publish_real(server, "4400.0.0")  # stable offers 4400.0.0
    assert check_status(omaha(server.url, REFERENCE_REQUEST)) == "ok"
    # An extra for a new version, with --channel stable: refused before anything is stored.
    reply = upload(server, "4401.0.0", EXTRA, kind="extra", filename="oem-azure.gz", channel="stable")
    assert reply.status_code == 409, reply.text
    error = reply.json()["error"]
    assert "4401.0.0 has no payload" in error and "on hold" in error
    assert channel_version(server, "stable") == "4400.0.0"
    assert [r["version"] for r in get(server, "/api/v1/releases")["releases"]] == ["4400.0.0"]
    assert check_status(omaha(server.url, REFERENCE_REQUEST)) == "ok"  # nodes are not put on hold
    # Without a channel the extra is stored; pointing or promoting a channel to it is refused.
    reply = upload(server, "4401.0.0", EXTRA, kind="extra", filename="oem-azure.gz")
    assert reply.status_code == 201, reply.text
    reply = call(server, "PUT", "/api/v1/channels/stable", {"version": "4401.0.0"})
    assert reply.status_code == 409 and "no payload" in reply.json()["error"]
    assert call(server, "PUT", "/api/v1/channels/alpha", {"version": "4401.0.0"}).status_code == 409
    assert channel_version(server, "stable") == "4400.0.0" and channel_version(server, "alpha") is None
    # Once its payload is there, the extra may come with the channel.
    publish_real(server, "4401.0.0", channel="beta")
    reply = upload(
        server,
        "4401.0.0",
        build_crau(image_bytes("another oem sysext", 2000)),
        kind="extra",
        filename="oem-gce.gz",
        channel="stable",
    )
    assert reply.status_code == 201, reply.text
    assert channel_version(server, "stable") == "4401.0.0"


def test_release_publish_refuses_extras_alone_with_a_channel(
    sqlite_server: RunningServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = sqlite_server
    monkeypatch.setenv("COREROLL_SERVER", server.url)
    monkeypatch.setenv("COREROLL_TOKEN", server.token)
    oem = tmp_path / "oem-azure.gz"
    oem.write_bytes(EXTRA)
    argv = ["release", "publish", "--extra", str(oem), "--version", "4500.0.0", "--channel", "stable"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and "release 4500.0.0 has no payload" in err and "uploading" not in err, err
    assert get(server, "/api/v1/releases")["releases"] == []
    publish_real(server, "4500.0.0", channel="alpha")
    assert main(argv) == 0, capsys.readouterr().err
    assert channel_version(server, "stable") == "4500.0.0"
