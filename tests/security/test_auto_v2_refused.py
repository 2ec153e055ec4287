"""`--etcd-api auto` on an etcd whose v2 API refuses us (v2 auth on, guest access revoked) while v3
is open: `coreroll lock` and the dashboard carry on with v3 and say that v2 was not looked at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coreroll.cli import main
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.locks.keys import semaphore_key
from coreroll.watch.views import CONNECTED
from tests.locks.rawetcd import LOCKSMITHD_INITIAL, raw_put
from tests.security.conftest import ROOT_PASSWORD, enable_v2_auth
from tests.watch.test_etcd_source import Running

pytestmark = pytest.mark.slow

REFUSED = "The request requires user authentication (110)"


@pytest.fixture(scope="module")
def v2_locked_etcd() -> Iterator[str]:
    with EmbeddedEtcd() as server:
        enable_v2_auth(server.endpoint, ROOT_PASSWORD)
        raw_put(
            server.endpoint,
            "v3",
            semaphore_key("db"),
            LOCKSMITHD_INITIAL,
        )
        yield server.endpoint


def test_lock_status_uses_v3_and_notes_that_v2_was_not_read(
    v2_locked_etcd: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lock", "--endpoint", v2_locked_etcd, "--group", "db", "status"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "Available: 1\nMax: 1\n"
    assert captured.err.startswith("note: etcd's v2 API could not be read (") and REFUSED in captured.err
    assert captured.err.endswith("); only v3 was looked at\n") and len(captured.err.splitlines()) == 1


async def test_dashboard_shows_v3_locks_and_says_why_v2_are_missing(v2_locked_etcd: str) -> None:
    run = Running(v2_locked_etcd, api="auto")
    try:
        await run.until(lambda m: m.lock_group("db", "v3") is not None, what="the v3 group")
        assert run.model.connections["etcd"].status == CONNECTED
        assert run.model.lock_apis_watched == {"v3"}
        (note,) = [e for _, e in run.model.activity_after(0) if e.kind == "Locks"]
        assert note.severity == "warning" and REFUSED in note.message
        assert note.message.endswith("reboot locks from v3 only")
    finally:
        await run.close()
