"""Payloads checked at upload (issue 15 section 4), on a real server started with --payload-key (the
fleet's update-payload-key.pub.pem) and through the CLI: a garbage, truncated, unsigned or
foreign-signed payload or extra is refused with a message naming what is wrong, nothing is stored,
and nothing reaches a node; a good one is published."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coreroll.cli import main
from coreroll.server.runner import RunningServer
from tests.omaha.crau_builder import build_crau, fleet_key, foreign_key, image_bytes, public_pem
from tests.omaha.fixtures import UPDATE_ENGINE_REQUEST
from tests.server.conftest import start
from tests.server.helpers import check_status, get, omaha, upload

VERSION = "3976.0.0"
NAME = "flatcar_production_update.gz"


@pytest.fixture
def keyed_server(tmp_path: Path, sqlite_url: str) -> Iterator[RunningServer]:
    key = tmp_path / "update-payload-key.pub.pem"
    key.write_bytes(public_pem(fleet_key()))
    running = start(tmp_path, sqlite_url, payload_key=key)
    yield running
    running.stop()


def _no_type(manifest: Any) -> None:
    manifest.partition_operations[0].ClearField("type")


GOOD = build_crau(image_bytes("usr", 60_000))
BAD_PAYLOADS = {
    # CrAU version 1 and a header, then garbage: before, every node downloaded it and failed with 23.
    "garbage": (
        b"CrAU" + (1).to_bytes(8, "big") + (256).to_bytes(8, "big") + b"garbage " * 300_000,
        ["manifest", "errorcode 23"],
    ),
    "truncated": (GOOD[:-1000], ["truncated", f"{len(GOOD) - 1000} bytes", "errorcode 11"]),
    "foreign-signed": (
        build_crau(image_bytes("usr", 60_000), signers=[foreign_key()]),
        ["another key", "errorcode 18"],
    ),
    "unsigned": (build_crau(image_bytes("usr", 60_000), signed=False), ["not signed", "errorcode 17"]),
    "bad manifest": (
        build_crau(image_bytes("usr", 60_000), edit_manifest=_no_type),
        ["partition_operations[0].type", "errorcode 23"],
    ),
}


def _nothing_stored(server: RunningServer) -> None:
    assert get(server, "/api/v1/releases")["releases"] == []
    packages = server.settings.data_dir / "packages"
    assert not packages.exists() or [p.name for p in packages.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("case", sorted(BAD_PAYLOADS))
def test_a_bad_payload_is_refused_at_upload_and_nothing_is_stored(
    keyed_server: RunningServer, case: str
) -> None:
    data, words = BAD_PAYLOADS[case]
    reply = upload(keyed_server, VERSION, data, channel="stable", filename=NAME)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error.startswith(f"payload {NAME} refused: ") and all(w in error for w in words), error
    _nothing_stored(keyed_server)
    assert check_status(omaha(keyed_server.url, UPDATE_ENGINE_REQUEST)) == "noupdate"


def test_a_good_payload_and_its_extras_are_published(keyed_server: RunningServer) -> None:
    reply = upload(keyed_server, VERSION, GOOD, channel="stable", filename=NAME)
    assert reply.status_code == 201, reply.text
    assert reply.json()["payloads"][0]["format"] == "update_engine"
    extra = build_crau(image_bytes("oem-azure", 9000))
    assert upload(keyed_server, VERSION, extra, kind="extra", filename="oem-azure.gz").status_code == 201
    packages = omaha(keyed_server.url, UPDATE_ENGINE_REQUEST).findall(
        "app/updatecheck/manifest/packages/package"
    )
    assert [p.get("name") for p in packages] == [NAME, "oem-azure.gz"]


@pytest.mark.parametrize("case", ["garbage", "truncated", "foreign-signed", "unsigned"])
def test_a_bad_extra_is_refused_as_download_sysext_would(keyed_server: RunningServer, case: str) -> None:
    assert upload(keyed_server, VERSION, GOOD, filename=NAME).status_code == 201
    data = {
        "garbage": b"\x1f\x8b\x08\x00 an oem tarball" * 100,
        **{k: v for k, (v, _) in BAD_PAYLOADS.items()},
    }[case]
    reply = upload(keyed_server, VERSION, data, kind="extra", filename="oem-azure.gz")
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error.startswith("extra package oem-azure.gz refused: ") and "download_sysext" in error, error
    assert get(keyed_server, "/api/v1/releases")["releases"][0]["extras"] == []


def test_without_payload_key_the_signature_must_still_be_there(sqlite_server: RunningServer) -> None:
    """No key: signed by anyone is accepted (nothing to verify with), unsigned is not."""
    foreign, _ = BAD_PAYLOADS["foreign-signed"]
    assert upload(sqlite_server, VERSION, foreign, filename=NAME).status_code == 201
    unsigned, _ = BAD_PAYLOADS["unsigned"]
    assert upload(sqlite_server, "3977.0.0", unsigned, filename=NAME).status_code == 422


def test_the_cli_refuses_a_bad_file_before_uploading_it(
    sqlite_server: RunningServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COREROLL_SERVER", sqlite_server.url)
    monkeypatch.setenv("COREROLL_TOKEN", sqlite_server.token)
    truncated = tmp_path / NAME
    truncated.write_bytes(GOOD[:-1])
    assert main(["release", "publish", "--file", str(truncated), "--version", VERSION]) == 1
    err = capsys.readouterr().err
    assert f"refused before upload: {truncated}: the file is truncated" in err and "uploading" not in err
    good = tmp_path / "good" / NAME
    good.parent.mkdir()
    good.write_bytes(GOOD)
    oem = tmp_path / "oem-azure.gz"
    oem.write_bytes(b"\x1f\x8b not a CrAU payload")
    assert main(["release", "publish", "--file", str(good), "--version", VERSION, "--extra", str(oem)]) == 1
    err = capsys.readouterr().err
    assert f"{oem}: the file starts with" in err and "download_sysext" in err and "uploading" not in err
    _nothing_stored(sqlite_server)


def test_the_server_refuses_to_start_with_a_payload_key_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("not a key\n")
    for key in (not_a_key, tmp_path / "missing.pem"):
        assert main(["server", "--data", str(tmp_path / "data"), "--payload-key", str(key)]) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith("coreroll server: --payload-key: ")
            and str(key) in err
            and len(err.splitlines()) == 1
        )
