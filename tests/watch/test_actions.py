"""Actions against a real etcd (and a real server where the action needs one)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from coreroll.audit import read_audit
from coreroll.etcd.config import EtcdConfig
from coreroll.locks import open_lock_store, semaphore_key
from coreroll.watch.actions import Actions, ReadOnlyError
from coreroll.wire.keys import COMMANDS_PREFIX, command_prefix, lock_group_key

BY = "ops@bastion"


@pytest.fixture
def config(clean_etcd: str) -> EtcdConfig:
    return EtcdConfig(endpoints=(clean_etcd,))


async def commands(v3: Any, mid: str) -> list[dict[str, Any]]:
    listing = await v3.get_prefix(command_prefix(mid).encode())
    return [json.loads(kv.value) for kv in listing]


async def test_check_queues_a_command_per_node_and_audits(config: EtcdConfig, v3: Any) -> None:
    actions = Actions(config, None, None, by=BY)
    result = await actions.check(["n1", "n2", "n1"])
    assert result.ok and result.message == "update check queued for 2 nodes"
    for mid in ("n1", "n2"):
        (cmd,) = await commands(v3, mid)
        assert cmd["action"] == "check" and cmd["args"] == {} and cmd["by"] == BY and cmd["at"].endswith("Z")
    (record,) = await read_audit(config)
    assert (record["action"], record["target"], record["result"], record["by"]) == (
        "check",
        "2 nodes: n1, n2",
        "ok",
        BY,
    )


async def test_unlock_and_a_holder_that_released_meanwhile(config: EtcdConfig, v3: Any) -> None:
    async with open_lock_store(config) as store:
        await store.set_max("web", 2)
        await store.lock("web", "n1")
    actions = Actions(config, None, None, by=BY)
    result = await actions.unlock("web", "n1")
    assert result.ok and result.message == "unlocked n1 in lock group web"
    raw = (await v3.get(semaphore_key("web").encode())).value
    doc = json.loads(raw)
    assert (doc["semaphore"], doc["max"], doc["holders"] or []) == (2, 2, [])

    again = await actions.unlock("web", "n1")  # released meanwhile (here: by us)
    assert not again.ok
    assert again.message == "n1 no longer holds lock group web (released meanwhile); nothing changed"
    assert (await v3.get(semaphore_key("web").encode())).value == raw
    results = [(r["action"], r["result"]) for r in await read_audit(config)]
    assert results[-2:] == [("unlock", "ok"), ("unlock", "not held: nothing changed")]


async def test_set_max(config: EtcdConfig, v3: Any) -> None:
    actions = Actions(config, None, None, by=BY)
    result = await actions.set_max("", 3)
    assert result.ok and result.message == "lock group (default): max 1 -> 3"
    doc = json.loads((await v3.get(semaphore_key("").encode())).value)
    assert (doc["semaphore"], doc["max"]) == (3, 3)
    bad = await actions.set_max("", -1)
    assert not bad.ok and "0 or more" in bad.message
    assert [r["result"] for r in await read_audit(config)] == ["ok: max 1 -> 3"]
    huge = await actions.set_max("", 2**63)
    assert not huge.ok and "max would be 9223372036854775808, outside the int64 range" in huge.message
    assert json.loads((await v3.get(semaphore_key("").encode())).value)["max"] == 3


async def test_corrupt_semaphore_is_reported_and_not_overwritten(config: EtcdConfig, v3: Any) -> None:
    await v3.put(semaphore_key("db").encode(), b"{oops")
    result = await Actions(config, None, None, by=BY).unlock("db", "n1")
    assert not result.ok and lock_group_key("db") in result.message
    assert (await v3.get(semaphore_key("db").encode())).value == b"{oops"


async def test_read_only_refuses_everything_before_writing(config: EtcdConfig, v3: Any) -> None:
    actions = Actions(config, "http://127.0.0.1:9", "token", read_only=True, by=BY)
    calls = [
        actions.check(["n1"]),
        actions.set_channel(["n1"], "beta"),
        actions.unlock("", "n1"),
        actions.set_max("", 2),
        actions.pause_group("beta"),
        actions.resume_group("beta"),
    ]
    for call in calls:
        with pytest.raises(ReadOnlyError, match="read-only mode"):
            await call
    assert (await v3.get_all()).count == 0  # nothing at all was written


async def test_set_channel_refused_without_a_server(config: EtcdConfig, v3: Any) -> None:
    result = await Actions(config, "http://127.0.0.1:9", None, by=BY).set_channel(["n1"], "beta")
    assert not result.ok and "cannot ask the server" in result.message
    assert (await v3.get_prefix(b"coreroll/")).count == 0


async def test_check_many_marked_nodes(config: EtcdConfig, v3: Any) -> None:
    ids = [f"m{i:03d}" for i in range(150)]
    result = await Actions(config, None, None, by=BY).check(ids)
    assert result.ok and result.message == "update check queued for 150 nodes"
    listing = await v3.get_prefix(COMMANDS_PREFIX.encode(), keys_only=True)
    assert sorted(kv.key.decode().split("/")[3] for kv in listing) == ids


@pytest.fixture
def hostile_server() -> Iterator[str]:
    """A real HTTP server on loopback that lists channels no node should be sent to."""
    names = ["stable", "$(reboot)", "beta\x1b]0;pwned\x07", "x" * 70_000]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"channels": [{"name": n} for n in names]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


async def test_set_channel_refuses_what_is_not_a_channel_name(
    config: EtcdConfig, v3: Any, hostile_server: str
) -> None:
    """Issue 16 defect 3: a name the server lists is still refused when it is not a channel name
    (the node would refuse it too); nothing is written."""
    actions = Actions(config, hostile_server, None, by=BY)
    for name, shown in (
        ("$(reboot)", "'$(reboot)'"),
        ("beta\x1b]0;pwned\x07", "'beta\\x1b]0;pwned\\x07'"),
        ("x" * 70_000, "'" + "x" * 60 + "... (70000 characters)'"),
    ):
        result = await actions.set_channel(["n1"], name)
        assert not result.ok
        assert result.message == (
            f"channel not switched: {shown} is not a channel name "
            "(1-255 of A-Z a-z 0-9 . _ -, starting with a letter or digit)"
        )
    assert (await v3.get_prefix(b"coreroll/")).count == 0  # no command, no audit record
    assert (await actions.set_channel(["n1"], "stable")).ok  # the server's real channel still works


def status_calls(endpoint: str) -> int:
    """How many gRPC Status calls etcd has served: each new v3 connection makes one (its probe)."""
    import httpx

    metric = 'grpc_server_started_total{grpc_method="Status",grpc_service="etcdserverpb.Maintenance",grpc_type="unary"}'
    for line in httpx.get(f"{endpoint}/metrics", timeout=5).text.splitlines():
        if line.startswith(metric):
            return int(float(line.split()[-1]))
    return 0


@pytest.mark.parametrize("api", ["v3", "auto"])
async def test_one_v3_connection_per_lock_action(clean_etcd: str, api: str) -> None:
    # the lock change and its audit record share the action's one v3 connection (an unlock used
    # to open two: one for the lock store, one for the audit record)
    config = EtcdConfig(endpoints=(clean_etcd,), api=api)
    async with open_lock_store(EtcdConfig(endpoints=(clean_etcd,))) as store:
        await store.set_max("web", 2)
        await store.lock("web", "n1")
    actions = Actions(config, None, None, by=BY)
    for act in (
        lambda: actions.unlock("web", "n1"),
        lambda: actions.set_max("web", 3),
        lambda: actions.check(["n1"]),
    ):
        before = status_calls(clean_etcd)
        assert (await act()).ok
        assert status_calls(clean_etcd) - before == 1
    assert [r["action"] for r in await read_audit(config)] == ["unlock", "set-max", "check"]
