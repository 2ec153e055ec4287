"""`coreroll report` keeps everything it writes in etcd's v3 keyspace: LOCKSMITHCTL_ETCD_API (which
picks the reboot-lock API for `coreroll lock` and the dashboard) neither moves nor breaks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from coreroll.cli import build_parser
from coreroll.commands.report import _etcd_config


@pytest.mark.parametrize("value", ["v2", "auto", "etcd2"])
def test_report_ignores_the_lock_api_variable(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCKSMITHCTL_ETCD_API", value)
    args = build_parser().parse_args(["report", "--root", str(tmp_path), "--etcd", "http://10.0.0.5:2379"])
    config = _etcd_config(args, tmp_path)
    assert (config.api, config.endpoints) == ("v3", ("http://10.0.0.5:2379",))
