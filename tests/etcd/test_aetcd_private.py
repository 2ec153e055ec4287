"""Every private name of aetcd that coreroll/etcd/aetcd_private.py relies on still exists in the
installed aetcd: an aetcd release that renames one fails here, not in a node agent at 3 am."""

from __future__ import annotations

import aetcd
import pytest

from coreroll.etcd import aetcd_private


@pytest.mark.parametrize("name", aetcd_private.CLIENT_ATTRIBUTES)
def test_client_still_has(name: str) -> None:
    client = aetcd.Client(host="127.0.0.1", port=9)  # no connection is made until connect()
    assert hasattr(client, name), f"aetcd.Client no longer sets {name}: re-check TLSClient.connect"


@pytest.mark.parametrize(
    ("module", "name"), aetcd_private.MODULE_NAMES, ids=lambda v: getattr(v, "__name__", v)
)
def test_module_still_has(module: object, name: str) -> None:
    assert hasattr(module, name), f"{module} no longer has {name}"


def test_connect_does_what_tls_client_repeats() -> None:
    # TLSClient.connect copies aetcd.Client.connect's steps; a changed original needs a look.
    import inspect

    source = inspect.getsource(aetcd.Client.connect)
    for step in (
        "_is_connecting",
        "AuthStub",
        "KVStub",
        "LeaseStub",
        "MaintenanceStub",
        "Watcher",
        "_connected.set()",
    ):
        assert step in source, f"aetcd.Client.connect changed ({step} gone): re-check TLSClient.connect"


def test_no_aetcd_or_grpc_import_outside_coreroll_etcd() -> None:
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    pattern = re.compile(r"^\s*(import|from)\s+(aetcd|grpc)\b", re.M)
    offenders = [
        str(path.relative_to(root))
        for folder in ("coreroll", "tui", "widgets")
        for path in (root / folder).rglob("*.py")
        if "coreroll/etcd" not in path.as_posix() and pattern.search(path.read_text())
    ]
    assert offenders == []
