"""update.conf: read, change and write back, keeping everything we do not touch."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from coreroll.node.updateconf import DEFAULT_SERVER, UpdateConf, UpdateConfError

SAMPLE = """\
# written by ct from a Container Linux Config
GROUP=beta
SERVER="https://updates.example.com/v1/update/"
REBOOT_STRATEGY='etcd-lock'
LOCKSMITHD_REBOOT_WINDOW_START="Thu 23:00"
LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h30m
LOCKSMITHD_GROUP="lb \\"east\\""
LOCKSMITHD_ENDPOINT=http://10.0.0.1:2379,http://10.0.0.2:2379
  ; an old-style comment
MACHINE_ALIAS = web-01

PCR_POLICY_SERVER=
"""


def test_reads_every_key(tmp_path: Path) -> None:
    path = tmp_path / "update.conf"
    path.write_text(SAMPLE)
    conf = UpdateConf.load(path)
    # update_engine takes "MACHINE_ALIAS " (blank included) as the key: for it the alias is unset
    assert conf.warnings == [
        f"{path}:10: update_engine reads none of its keys here, systemd MACHINE_ALIAS='web-01'; "
        "coreroll takes update_engine's reading for its keys"
    ]
    assert conf.group == "beta"
    assert conf.server == "https://updates.example.com/v1/update/"
    assert conf.reboot_strategy == "etcd-lock"
    assert (conf.window_start, conf.window_length) == ("Thu 23:00", "1h30m")
    assert conf.locksmith_group == 'lb "east"'
    assert conf.locksmith_endpoints == ("http://10.0.0.1:2379", "http://10.0.0.2:2379")
    assert conf.get("MACHINE_ALIAS") is None
    assert conf.get("PCR_POLICY_SERVER") == ""
    assert conf.get("NOPE", "x") == "x"


def test_defaults_for_a_missing_file(tmp_path: Path) -> None:
    conf = UpdateConf.load(tmp_path / "absent.conf")
    assert (conf.group, conf.server, conf.reboot_strategy) == ("stable", DEFAULT_SERVER, "reboot")
    assert conf.window_start is None and conf.window_length is None
    assert conf.locksmith_group == "" and conf.locksmith_endpoints == ()


def test_legacy_window_keys_are_a_fallback() -> None:
    conf = UpdateConf.parse("REBOOT_WINDOW_START=04:00\nREBOOT_WINDOW_LENGTH=1h\n")
    assert (conf.window_start, conf.window_length) == ("04:00", "1h")
    conf = UpdateConf.parse(
        "REBOOT_WINDOW_START=04:00\nLOCKSMITHD_REBOOT_WINDOW_START=05:00\nREBOOT_WINDOW_LENGTH=1h\n"
    )
    assert conf.window_start == "05:00"


def test_last_assignment_wins() -> None:
    assert UpdateConf.parse("GROUP=alpha\nGROUP=beta\n").group == "beta"


def test_round_trip_is_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "update.conf"
    path.write_text(SAMPLE)
    UpdateConf.load(path).save()
    assert path.read_text() == SAMPLE


def test_set_changes_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "update.conf"
    path.write_text(SAMPLE)
    conf = UpdateConf.load(path)
    conf.set("GROUP", "stable")
    conf.set("SERVER", "http://127.0.0.1:8400/v1/update/")
    conf.set("LOCKSMITHD_REBOOT_WINDOW_START", "Sun 02:00")
    conf.set("NEW_KEY", 'has space and "quote"')
    conf.save()
    text = path.read_text()
    expected = (
        SAMPLE.replace("GROUP=beta", "GROUP=stable")
        .replace(
            'SERVER="https://updates.example.com/v1/update/"', 'SERVER="http://127.0.0.1:8400/v1/update/"'
        )
        .replace('"Thu 23:00"', '"Sun 02:00"')
    ) + 'NEW_KEY="has space and \\"quote\\""\n'
    assert text == expected
    again = UpdateConf.load(path)
    assert again.get("NEW_KEY") == 'has space and "quote"'
    assert again.group == "stable"
    assert again.window_start == "Sun 02:00"


def test_malformed_lines_warn_and_the_rest_is_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "update.conf"
    text = 'GROUP=alpha\nthis is not an assignment\nSERVER="http://unterminated\nREBOOT_STRATEGY=off\n'
    path.write_text(text)
    with caplog.at_level(logging.DEBUG):
        conf = UpdateConf.load(path)
    assert conf.group == "alpha" and conf.reboot_strategy == "off"
    assert conf.server == '"http://unterminated'  # what update_engine uses: no closing quote to drop
    assert conf.warnings == [
        f"{path}:2: ignoring malformed line 'this is not an assignment': expected KEY=value",
        f"{path}:3: ignoring malformed line 'SERVER=\"http://unterminated': "
        "unterminated quote (systemd reads on into the next line)",
        f"{path}:3: update_engine reads SERVER='\"http://unterminated' here, systemd nothing; "
        "coreroll takes update_engine's reading for its keys",
    ]
    assert "update.conf:2: ignoring malformed line" in caplog.text
    # what we could not parse is written back untouched
    conf.set("GROUP", "beta")
    conf.save()
    assert path.read_text() == text.replace("GROUP=alpha", "GROUP=beta")


def test_bad_values_are_refused() -> None:
    conf = UpdateConf.parse("")
    with pytest.raises(UpdateConfError, match=r"not a valid update\.conf key"):
        conf.set("BAD KEY", "x")
    with pytest.raises(UpdateConfError, match="GROUP contains a newline"):
        conf.set("GROUP", "a\nSERVER=evil")
    assert conf.render() == b""


# Issue 16 defect 1: update_engine (simple_key_value_store.cc ParseString) and systemd's
# EnvironmentFile= end a line at "\n" (systemd also at "\r"); Python's str.splitlines also ends one
# at NEL, U+2028, form feed and vertical tab.
NOT_LINE_ENDS = {
    "NEL": b"\xc2\x85",
    "U+2028": b"\xe2\x80\xa8",
    "form feed": b"\x0c",
    "vertical tab": b"\x0b",
    "lone CR": b"\r",
}


@pytest.mark.parametrize("separator", NOT_LINE_ENDS.values(), ids=NOT_LINE_ENDS.keys())
def test_only_a_newline_ends_a_line(tmp_path: Path, separator: bytes) -> None:
    path = tmp_path / "update.conf"
    path.write_bytes(b"GROUP=beta" + separator + b"SERVER=http://evil/\n")
    conf = UpdateConf.load(path)
    # one line for update_engine: GROUP is all of it, and no SERVER is set
    assert conf.get("SERVER") is None and conf.server == DEFAULT_SERVER
    assert conf.get("GROUP") == "beta" + separator.decode() + "SERVER=http://evil/"


@pytest.mark.parametrize("separator", NOT_LINE_ENDS.values(), ids=NOT_LINE_ENDS.keys())
def test_a_comment_stays_a_comment_through_a_channel_switch(tmp_path: Path, separator: bytes) -> None:
    path = tmp_path / "update.conf"
    original = b"# note" + separator + b"SERVER=http://evil/\nGROUP=beta\n"
    path.write_bytes(original)
    conf = UpdateConf.load(path)
    assert conf.get("SERVER") is None
    conf.set("GROUP", "alpha")
    conf.save()
    assert path.read_bytes() == original.replace(b"GROUP=beta", b"GROUP=alpha")
    assert UpdateConf.load(path).get("SERVER") is None


def test_a_switch_changes_the_group_line_and_no_other_byte(tmp_path: Path) -> None:
    path = tmp_path / "update.conf"
    original = (
        b"# \xe9t\xe9: written on a latin-1 terminal\r\n"
        b"REBOOT_STRATEGY=off\r\n"
        b"GROUP=beta\r\n"
        b"# a note\xc2\x85with a NEL\r\n"
        b"LOCKSMITHD_GROUP=web"  # and no newline at the end
    )
    path.write_bytes(original)
    conf = UpdateConf.load(path)
    assert conf.get("GROUP") == "beta\r"  # what update_engine sends: it keeps the CR of a CRLF line
    assert conf.warnings == [
        f"{path}:3: update_engine reads GROUP='beta\\r' here, systemd GROUP='beta'; "
        "coreroll takes update_engine's reading for its keys"
    ]
    assert (conf.reboot_strategy, conf.locksmith_group) == ("off", "web")  # systemd ends lines at CR
    conf.set("GROUP", "alpha")
    conf.save()
    # the GROUP line is rewritten so that both programs read "alpha"; every other byte is kept
    assert path.read_bytes() == original.replace(b"GROUP=beta\r\n", b"GROUP=alpha\n")
    assert UpdateConf.load(path).get("GROUP") == "alpha"
    conf.set("SERVER", "http://127.0.0.1:8400/v1/update/")  # appended after the unterminated line
    conf.save()
    assert path.read_bytes() == original.replace(b"GROUP=beta\r\n", b"GROUP=alpha\n") + (
        b"\nSERVER=http://127.0.0.1:8400/v1/update/\n"
    )


def test_a_carriage_return_inside_a_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "update.conf"
    path.write_bytes(b"REBOOT_STRATEGY=off\rLOCKSMITHD_GROUP=web\nGROUP=beta\rSERVER=http://evil/\n")
    conf = UpdateConf.load(path)
    # locksmithd's keys as systemd reads them (two lines each), update_engine's as it does (one)
    assert (conf.reboot_strategy, conf.locksmith_group) == ("off", "web")
    assert (conf.get("GROUP"), conf.get("SERVER")) == ("beta\rSERVER=http://evil/", None)
    assert [w.split(": ", 1)[1] for w in conf.warnings] == [
        "carriage return inside 'REBOOT_STRATEGY=off\\rLOCKSMITHD_GROUP=web': update_engine reads one "
        "line, systemd's EnvironmentFile= (locksmithd) 2",
        "carriage return inside 'GROUP=beta\\rSERVER=http://evil/': update_engine reads one line, "
        "systemd's EnvironmentFile= (locksmithd) 2",
    ]
    conf.set("GROUP", "alpha")  # the split line is left as it is; the new last line wins for both
    assert conf.render().endswith(b"GROUP=beta\rSERVER=http://evil/\nGROUP=alpha\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another owner needs root")
def test_a_rewrite_keeps_the_files_mode_and_owner(tmp_path: Path) -> None:
    path = tmp_path / "update.conf"
    path.write_text("GROUP=beta\n")
    os.chmod(path, 0o640)
    os.chown(path, 1234, 5678)
    conf = UpdateConf.load(path)
    conf.set("GROUP", "alpha")
    conf.save()
    st = path.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 1234, 5678)
    assert path.read_text() == "GROUP=alpha\n"


def test_a_created_file_is_0644_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "etc/flatcar/update.conf"
    old_umask = os.umask(0o077)
    try:
        conf = UpdateConf.load(path)
        conf.set("GROUP", "beta")
        conf.save()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
