"""URL mode (`release publish --url`) and the pure parts of the upstream sync.

A payload served by another HTTP server is recorded with its size and hashes (from ``--file`` or the
flags); the Omaha codebase is the URL's directory; bad URLs, sizes and hashes are refused naming
the field. The sync's answer parser and planner: targets and floors as Nebraska's syncer picks them,
a floor's own directory, and refusals that name what is wrong.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from pathlib import Path

import pytest
from lxml import etree

from coreroll.cli import main
from coreroll.omaha.client import parse_response
from coreroll.omaha.messages import OmahaParseError
from coreroll.omaha.upstream import parse_sync_answer, sync_request
from coreroll.server.runner import RunningServer
from coreroll.server.sync_plan import floor_codebase, plan_answer
from tests.server.helpers import get, post, real_payload, request_xml
from tests.server.upstream_fixture import FixtureUpstream, UpstreamRelease

CDN = "https://cdn.example.com/flatcar/amd64-usr/4230.2.1/flatcar_production_update.gz"


@pytest.fixture
def env(sqlite_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    monkeypatch.setenv("COREROLL_SERVER", sqlite_server.url)
    monkeypatch.setenv("COREROLL_TOKEN", sqlite_server.token)
    return sqlite_server


def test_publish_url_with_a_local_copy_offers_the_url_directory(
    env: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "flatcar_production_update.gz"
    data = real_payload("4230.2.1")
    copy.write_bytes(data)
    code = main(["release", "publish", "--url", CDN, "--file", str(copy), "--version", "4230.2.1",
                 "--channel", "stable"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and f"at {CDN} ({len(data)} bytes), channel stable" in out, out
    info = parse_response(post(env.url, request_xml("a" * 32, "4000.0.0", agent=False)).content)
    assert info.offer is not None and info.payload_urls == (CDN,)
    assert info.offer.codebase_url == CDN.rpartition("/")[0] + "/"
    assert info.offer.sha256_b64 == base64.b64encode(hashlib.sha256(data).digest()).decode()
    release = get(env, "/api/v1/releases")["releases"][0]
    assert release["payloads"][0]["hosted"] is False and release["url"] == CDN
    assert not (env_data(env) / "4230.2.1").exists()  # nothing stored on this server


def env_data(server: RunningServer) -> Path:
    return Path(server.settings.packages_dir)


def test_publish_url_with_given_hashes_and_the_refusals(
    env: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sha256 = hashlib.sha256(b"x").hexdigest()
    sha1 = base64.b64encode(hashlib.sha1(b"x").digest()).decode()
    base = ["release", "publish", "--version", "4230.2.2"]
    assert main([*base, "--url", CDN.replace("4230.2.1", "4230.2.2"), "--size", "5000", "--sha1", sha1,
                 "--sha256", sha256]) == 0  # fmt: skip
    capsys.readouterr()
    release = get(env, "/api/v1/releases")["releases"][0]
    assert release["size"] == 5000 and release["sha256"] == base64.b64encode(bytes.fromhex(sha256)).decode()
    cases = {
        ("--url", "ftp://cdn.example.com/a/update.gz", "--size", "1", "--sha1", sha1, "--sha256", sha256):
            "the scheme must be https or http",
        ("--url", CDN, "--size", "0", "--sha1", sha1, "--sha256", sha256): "size: expected an integer from 1",
        ("--url", CDN, "--size", "9", "--sha1", sha1, "--sha256", "abc"): "sha256 'abc': not the base64 or hex",
        ("--url", CDN + "?sig=1", "--size", "9", "--sha1", sha1, "--sha256", sha256): "no ?query or #fragment",
        ("--url", "https://u:p@cdn.example.com/a/update.gz", "--size", "9", "--sha1", sha1, "--sha256", sha256):
            "user:password",
    }  # fmt: skip
    for argv, message in cases.items():
        assert main([*base[:3], "4230.9.9", *argv]) == 1, argv
        assert message in capsys.readouterr().err, argv
    assert main([*base, "--url", CDN, "--size", "9"]) == 2
    assert "--url needs --file F" in capsys.readouterr().err
    assert [r["version"] for r in get(env, "/api/v1/releases")["releases"]] == ["4230.2.2"]


def test_the_sync_request_is_update_engine_shaped_and_asks_for_every_manifest() -> None:
    body = sync_request("stable", "arm64-usr", "3600.0.0", "{m}", "{b}")
    root = etree.fromstring(body)
    app = root.find("app")
    assert root.get("installsource") == "scheduler" and root.get("version") == "CoreOSUpdateEngine-0.1.0.0"
    assert (app.get("track"), app.get("board"), app.get("version")) == ("stable", "arm64-usr", "3600.0.0")
    assert app.get("multi_manifest_ok") == "true" and app.find("updatecheck") is not None
    assert app.find("ping") is None and app.find("event") is None
    assert root.find("os").get("sp") == "3600.0.0_aarch64"


def fixture_answer(releases: list[UpstreamRelease], current: str = "0.0.0") -> bytes:
    upstream = FixtureUpstream({("stable", "amd64-usr"): releases})
    try:
        return upstream.answer(sync_request("stable", "amd64-usr", current, "{m}", "{b}"))
    finally:
        upstream.stop()


def test_floors_come_first_each_from_its_own_directory_and_the_target_last() -> None:
    answer = parse_sync_answer(fixture_answer([
        UpstreamRelease("3600.0.0", floor=True, floor_reason="a"), UpstreamRelease("3650.0.0"),
        UpstreamRelease("3700.0.0", floor=True, floor_reason="b"), UpstreamRelease("3732.0.0", extras=("oem-qemu.gz",)),
    ]))  # fmt: skip
    plan = plan_answer(answer)
    assert plan.target == "3732.0.0" and plan.refused == []
    assert [(r.version, r.floor, r.target) for r in plan.releases] == [
        ("3600.0.0", True, False), ("3700.0.0", True, False), ("3732.0.0", False, True)]  # fmt: skip
    assert plan.releases[0].payload.url.endswith("/amd64-usr/3600.0.0/flatcar_production_update.gz")
    assert [e.filename for e in plan.releases[2].extras] == ["oem-qemu.gz"]
    # All floors, no target: recorded, and the channel stays
    only_floors = answer.__class__(answer.app_status, answer.status, answer.codebases,
                                   tuple(m for m in answer.manifests if m.is_floor))  # fmt: skip
    assert plan_answer(only_floors).target is None


def test_a_bad_manifest_is_refused_with_its_reason_and_the_others_kept() -> None:
    text = fixture_answer(
        [UpstreamRelease("3700.0.0", floor=True), UpstreamRelease("3732.0.0", extras=("oem.gz",))]
    )
    bad = text.replace(b' hash_sha256="', b' hash_sha255="').replace(
        b'version="3700.0.0"', b'version="3700.0.0;rm"'
    )
    plan = plan_answer(parse_sync_answer(bad))
    reasons = {r.version: r.reason for r in plan.refused}
    assert "is not a version" in reasons["3700.0.0;rm"] and "has no hash_sha256" in reasons["3732.0.0"]
    assert plan.releases == []
    with pytest.raises(OmahaParseError, match=r"DOCTYPE|DTD"):
        parse_sync_answer(b'<!DOCTYPE r [<!ENTITY x "y">]><response><app status="ok"/></response>')
    assert (
        floor_codebase("https://h/amd64-usr/3732.0.0/", "3732.0.0", "3700.0.0")
        == "https://h/amd64-usr/3700.0.0/"
    )
    assert floor_codebase("https://h/current/", "3732.0.0", "3700.0.0") == "https://h/current/"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sync", "ftp://upstream.example/v1/update/"], "expected an http:// or https:// URL"),
        (["--sync", "--sync-interval", "30s"], "--sync-interval 30: at least 60 seconds"),
        (["--host-packages"], "--host-packages mirrors what --sync brings: give --sync too"),
        (["--sync", "--sync-boards", "amd64-usr,x y"], "expected names of letters"),
    ],
)
def test_bad_sync_flags_stop_the_server_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    usage = "x y" in flags[-1]  # argparse's own usage error
    with pytest.raises(SystemExit) if usage else contextlib.nullcontext():
        assert main(["server", "--data", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "token").exists()
