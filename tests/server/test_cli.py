"""The CLI over the HTTP API: release, group, instances, server keygen."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from coreroll.cli import main
from coreroll.server.runner import RunningServer
from tests.server.conftest import start
from tests.server.helpers import HTTP, check_status, omaha, real_payload, request_xml

pytestmark = pytest.mark.slow


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def env(sqlite_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    monkeypatch.setenv("COREROLL_SERVER", sqlite_server.url)
    monkeypatch.setenv("COREROLL_TOKEN", sqlite_server.token)
    return sqlite_server


def test_release_publish_promote_list(env: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "release", "publish", "--synthetic", "--version", "4000.0.0", "--channel", "alpha"
    )
    assert code == 0 and out.startswith("published 4000.0.0 amd64-usr update.gz (") and "coreroll" in out
    code, _, err = run(capsys, "release", "promote", "4000.0.0", "--to", "stable")
    assert code == 1 and "never been on beta" in err and len(err.strip().splitlines()) == 1
    assert (
        run(capsys, "release", "promote", "4000.0.0", "--to", "beta")[1]
        == "channel beta now offers 4000.0.0\n"
    )
    assert run(capsys, "release", "promote", "4000.0.0", "--to", "stable")[0] == 0
    code, out, _ = run(capsys, "release", "list", "--json")
    listing = json.loads(out)
    assert [c["version"] for c in listing["channels"]] == ["4000.0.0"] * 3
    assert listing["releases"][0]["channels"] == ["alpha", "beta", "stable"]
    code, out, _ = run(capsys, "release", "list")
    assert "stable    4000.0.0" in out
    activity = HTTP.get(f"{env.url}/api/v1/activity").json()["activity"]
    assert [a["kind"] for a in activity].count("ChannelUpdated") == 3


def test_synthetic_version_defaults_to_the_coreos_scheme(
    env: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from coreroll.server.versions import coreos_version

    first = run(capsys, "release", "publish", "--synthetic")[1]
    second = run(capsys, "release", "publish", "--synthetic", "--json")[1]
    assert first.startswith(f"published {coreos_version()} amd64-usr update.gz (")
    assert json.loads(second)["version"] == coreos_version(None, 0, 1)
    assert run(capsys, "release", "publish", "--file", "x")[0] == 2


def test_release_publish_file(env: RunningServer, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(capsys, "release", "publish", "--synthetic", "--version", "4000.0.0")
    payload = HTTP.get(f"{env.url}/packages/4000.0.0/amd64-usr/update.gz").content
    (tmp_path / "update.gz").write_bytes(payload)
    # Our signed container carrying 4000.0.0 cannot be published as another version.
    code, _, err = run(
        capsys, "release", "publish", "--file", str(tmp_path / "update.gz"), "--version", "4001.0.0"
    )
    assert code == 1 and "4000.0.0" in err
    # A real update_engine payload keeps its file's name and is offered to update_engine itself.
    real = tmp_path / "flatcar_production_update.gz"
    real.write_bytes(real_payload("4002.0.0", 5000))
    code, out, _ = run(capsys, "release", "publish", "--file", str(real), "--version", "4002.0.0",
                       "--channel", "stable")  # fmt: skip
    assert code == 0 and "update_engine" in out and real.name in out
    offer = omaha(env.url, request_xml("m1", "3999.0.0", agent=False))
    assert offer.find("app/updatecheck/manifest/packages/package").get("name") == real.name
    codebase = offer.find("app/updatecheck/urls/url").get("codebase")
    assert HTTP.get(codebase + real.name).content == real.read_bytes()
    # Anything else is refused unless --opaque says it is for coreroll agents only.
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x1f\x8b" + b"x" * 100)
    code, _, err = run(capsys, "release", "publish", "--file", str(junk), "--version", "4003.0.0")
    assert code == 1 and "CrAU" in err
    code, out, _ = run(capsys, "release", "publish", "--file", str(junk), "--version", "4003.0.0", "--opaque")
    assert code == 0 and "opaque" in out
    code, _, err = run(
        capsys, "release", "publish", "--file", str(tmp_path / "missing"), "--version", "1.0.0"
    )
    assert code == 1 and "missing" in err


def test_release_publish_boards_extras_and_floor(
    env: RunningServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    arm = tmp_path / "flatcar_production_update.gz"
    arm.write_bytes(real_payload("arm64", 2500))
    oem = tmp_path / "oem-ampere.gz"
    oem.write_bytes(real_payload("ampere oem sysext", 2000))
    code, out, _ = run(capsys, "release", "publish", "--file", str(arm), "--version", "4010.0.0", "--board",
                       "arm64-usr", "--extra", str(oem), "--channel", "stable", "--floor", "--floor-reason",
                       "needed by 4100")  # fmt: skip
    assert code == 0, out
    assert out.startswith("published 4010.0.0 arm64-usr flatcar_production_update.gz (") and "floor" in out
    assert "extra oem-ampere.gz" in out
    release = HTTP.get(f"{env.url}/api/v1/releases").json()["releases"][0]
    assert [(p["board"], p["filename"]) for p in release["payloads"]] == [("arm64-usr", arm.name)]
    assert [(e["board"], e["filename"]) for e in release["extras"]] == [("arm64-usr", oem.name)]
    assert (release["floor"], release["floor_reason"], release["channels"]) == (
        True,
        "needed by 4100",
        ["stable"],
    )
    assert HTTP.get(release["extras"][0]["url"]).content == oem.read_bytes()
    assert "arm64-usr +1" in run(capsys, "release", "list")[1]
    code, out, _ = run(capsys, "release", "floor", "4010.0.0", "--unset")
    assert code == 0 and out == "release 4010.0.0 is not a floor\n"
    code, _, err = run(
        capsys, "release", "publish", "--file", str(arm), "--version", "4010.0.0", "--board", "x"
    )
    assert code == 1 and "board 'x'" in err


def test_group_commands(env: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "group", "set-policy", "stable", "--max-updates-per-period", "2", "--period", "1h",
                       "--safe-mode", "on", "--timezone", "Europe/Berlin")  # fmt: skip
    assert code == 0 and "2/3600s" in out and "safe mode" in out
    policy = HTTP.get(f"{env.url}/api/v1/groups/stable").json()["policy"]
    assert (policy["max_updates_per_period"], policy["period_seconds"], policy["safe_mode"]) == (
        2,
        3600,
        True,
    )
    assert run(capsys, "group", "set-policy", "stable")[0] == 2
    code, _, err = run(capsys, "group", "set-policy", "stable", "--timezone", "Mars/Base")
    assert code == 1 and "Mars/Base" in err
    assert "PAUSED" in run(capsys, "group", "pause", "beta")[1]
    code, out, _ = run(capsys, "group", "list")
    assert "beta" in out and "PAUSED" in out
    assert json.loads(run(capsys, "group", "list", "--json")[1])[1]["policy"]["updates_enabled"] is False
    assert "enabled" in run(capsys, "group", "resume", "beta")[1]
    with pytest.raises(SystemExit):
        run(capsys, "group", "set-policy", "stable", "--period", "soon")


def test_instances_command(env: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "release", "publish", "--synthetic", "--version", "4000.0.0", "--channel", "stable")
    run(capsys, "group", "set-policy", "stable", "--max-updates-per-period", "1")
    assert check_status(omaha(env.url, request_xml("a" * 32, "3999.0.0"))) == "ok"
    assert check_status(omaha(env.url, request_xml("b" * 32, "3999.0.0"))) == "noupdate"
    rows = json.loads(run(capsys, "instances", "--json")[1])
    assert [(r["machine_id"][0], r["status"]) for r in rows] == [("a", "UpdateGranted"), ("b", "OnHold")]
    code, out, _ = run(capsys, "instances", "--status", "OnHold")
    assert code == 0 and "b" * 32 in out and "a" * 32 not in out and "max updates per period" in out
    code, _, err = run(capsys, "instances", "--status", "Sleeping")
    assert code == 1 and "Sleeping" in err


def test_token_sources_and_failures(
    sqlite_server: RunningServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COREROLL_TOKEN", raising=False)
    monkeypatch.setenv(
        "COREROLL_DATA", str(sqlite_server.settings.data_dir)
    )  # the token file the server wrote
    url = sqlite_server.url
    assert run(capsys, "--server", url, "group", "pause", "alpha")[0] == 0  # flags before the subcommand
    code, _, err = run(capsys, "group", "resume", "alpha", "--server", url, "--token", "wrong")
    assert code == 1 and "wrong bearer token" in err
    monkeypatch.setenv("COREROLL_DATA", "/nonexistent")
    code, _, err = run(capsys, "group", "resume", "alpha", "--server", url)
    assert code == 1 and "no token" in err
    code, _, err = run(capsys, "instances", "--server", "http://127.0.0.1:9")
    assert code == 1 and "cannot reach the update server" in err


def test_server_keygen(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "server", "keygen", "--out", str(tmp_path / "keys"))
    assert code == 0 and "0600" in out
    private = tmp_path / "keys" / "update-payload-key.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    code, _, err = run(capsys, "server", "keygen", "--out", str(tmp_path / "keys"))
    assert code == 1 and "refusing to overwrite" in err


def test_server_refuses_a_bad_database_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "server", "--data", str(tmp_path), "--db", "postgresql://nobody@127.0.0.1:1/x")
    assert code == 1 and err.strip().splitlines()[-1].startswith("coreroll server: cannot open database")
    assert "Traceback" not in err
    code, _, err = run(capsys, "server", "--data", str(tmp_path), "--db", "mysql://x")
    assert code == 2 and "expected sqlite:///PATH or postgresql://" in err
    code, _, err = run(capsys, "server", "--data", str(tmp_path), "--listen", "nowhere")
    assert code == 2 and "HOST:PORT" in err


FLEET = 10_500
HOSTILE = {
    "machine_id": "\x1b]0;pwned\x07evil",
    "version": "\x1b[2J",
    "status_reason": "held \x1b[31mred\u202e",
}


def _fill(db_url: str, count: int) -> list[str]:
    """``count`` instances plus one with terminal escapes in its strings, written through the
    server's own storage layer (one executemany) before the server starts; returns every id."""
    import asyncio
    import time

    from sqlalchemy import insert

    from coreroll.server import schema
    from coreroll.server.registry import Instance
    from coreroll.server.storage import Storage

    now = time.time()
    rows = [
        Instance(
            f"{n:032x}", "10.0.0.1", "3999.0.0", "stable", "stable", last_check=now, created_at=now
        ).row()
        for n in range(count)
    ]
    evil = Instance(HOSTILE["machine_id"], "10.0.0.2", HOSTILE["version"], "stable", "stable", last_check=now)
    evil.status_reason = HOSTILE["status_reason"]
    rows.append(evil.row())

    async def write() -> None:
        storage = Storage(db_url, time.time)
        await storage.start()
        try:
            async with storage.write() as tx:
                await tx.conn.execute(insert(schema.instances), rows)
        finally:
            await storage.close()

    asyncio.run(write())
    return sorted(r["machine_id"] for r in rows)


@pytest.fixture
def fleet_env(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningServer, list[str]]]:
    ids = _fill(sqlite_url, FLEET)
    server = start(tmp_path, sqlite_url)
    monkeypatch.setenv("COREROLL_SERVER", server.url)
    yield server, ids
    server.stop()


def test_instances_pages_past_10000_machines(
    fleet_env: tuple[RunningServer, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    server, ids = fleet_env
    code, out, err = run(capsys, "instances")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("MACHINE ID") and len(lines) == 1 + len(
        ids
    )  # before: 1,000 (the default limit)
    assert [line.split()[0] for line in lines[1:] if not line.startswith("\\x1b")] == [
        i for i in ids if not i.startswith("\x1b")
    ]
    code, out, _ = run(capsys, "instances", "--json")
    assert code == 0 and [i["machine_id"] for i in json.loads(out)] == ids
    code, out, err = run(capsys, "instances", "--limit", "10001")
    assert code == 0 and len(out.splitlines()) == 1 + 10_001
    assert err == f"(10001 of {len(ids)} shown; raise --limit)\n"
    # The API's cursor: exact pages, a null next on the last one.
    first = HTTP.get(f"{server.url}/api/v1/instances", params={"limit": 10_000}).json()
    assert first["next"] == ids[9_999] and first["total"] == len(ids)
    rest = HTTP.get(f"{server.url}/api/v1/instances", params={"limit": 10_000, "after": first["next"]}).json()
    assert [i["machine_id"] for i in first["instances"] + rest["instances"]] == ids and rest["next"] is None
    both = HTTP.get(f"{server.url}/api/v1/instances", params={"after": ids[0], "offset": 5})
    assert both.status_code == 400 and "after" in both.json()["error"]


def test_instances_output_shows_control_characters_escaped(
    fleet_env: tuple[RunningServer, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "instances", "--status", "Undefined", "--limit", "20000")
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out  # nothing reaches the terminal raw
    evil = next(line for line in out.splitlines() if "evil" in line)
    assert evil.startswith("\\x1b]0;pwned\\x07evil") and "\\x1b[2J" in evil
    assert evil.endswith("held \\x1b[31mred\\u202e")
    code, out, _ = run(capsys, "instances", "--json")
    assert (
        "\x1b" not in out and json.loads(out)[0]["machine_id"] == HOSTILE["machine_id"]
    )  # JSON escapes them
