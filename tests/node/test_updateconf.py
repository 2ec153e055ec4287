"""update.conf: read, change and write back, keeping everything we do not touch."""

from __future__ import annotations

import logging
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
    assert conf.warnings == []
    assert conf.group == "beta"
    assert conf.server == "https://updates.example.com/v1/update/"
    assert conf.reboot_strategy == "etcd-lock"
    assert (conf.window_start, conf.window_length) == ("Thu 23:00", "1h30m")
    assert conf.locksmith_group == 'lb "east"'
    assert conf.locksmith_endpoints == ("http://10.0.0.1:2379", "http://10.0.0.2:2379")
    assert conf.get("MACHINE_ALIAS") == "web-01"
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
    with caplog.at_level(logging.WARNING):
        conf = UpdateConf.load(path)
    assert conf.group == "alpha" and conf.reboot_strategy == "off"
    assert conf.server == DEFAULT_SERVER
    assert conf.warnings == [
        f"{path}:2: ignoring malformed line 'this is not an assignment': expected KEY=value",
        f"{path}:3: ignoring malformed line 'SERVER=\"http://unterminated': unterminated double quote",
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
    assert conf.render() == ""
