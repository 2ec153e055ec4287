"""kill -9 the server mid-rollout: after a restart nothing it acknowledged is lost, and the feed
resumes from the last id a client saw. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from coreroll.omaha.payload import generate_private_key, write_keypair
from coreroll.server.runner import RunningServer, ServerProcess, run_server_in_thread, start_server_process
from coreroll.server.settings import ServerSettings
from tests.server.helpers import check_status, event_xml, read_feed, request_xml, wait_until

pytestmark = pytest.mark.slow

OLD, NEW = "3999.0.0", "4000.0.0"
# The statuses each machine's requests lead to, in order (check, 13/1, 14/1, 3/1).
STEPS: list[tuple[str, bytes | None]] = [("UpdateGranted", None), ("Downloading", b"13"), ("Downloaded", b"14"),
                                         ("Installed", b"3")]  # fmt: skip
MACHINES = [f"{i:032x}" for i in range(24)]


def _request(machine: str, step: int) -> bytes:
    if step == 0:
        return request_xml(machine, OLD)
    return event_xml(machine, OLD, int(STEPS[step][1] or 0), 1)


def _admin(proc: ServerProcess | RunningServer) -> httpx.Client:
    return httpx.Client(base_url=proc.url, headers={"Authorization": f"Bearer {proc.token}"}, timeout=10)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    write_keypair(tmp_path / "data" / "keys", generate_private_key())
    return tmp_path / "data"


def test_kill_9_mid_rollout_loses_nothing_acknowledged(data_dir: Path, db_url: str) -> None:
    proc = start_server_process(data_dir, db_url)
    try:
        with _admin(proc) as client:
            assert client.post("/api/v1/releases", json={"version": NEW, "synthetic": True, "channel": "stable",
                                                         "image_size": 1024}).status_code == 201  # fmt: skip
            start = client.get("/api/v1/info").json()["feed_id"]

        feed_seen: list[dict[str, Any]] = []
        reader = threading.Thread(target=read_feed, kwargs={"url": proc.url, "last_id": start, "sink": feed_seen,
                                                             "timeout": 30})  # fmt: skip
        reader.start()

        acked: dict[str, int] = {}  # machine -> index of the last step the server answered 200 to
        acked_lock = threading.Lock()
        killed = threading.Event()

        def walk(machine: str) -> None:
            with httpx.Client(timeout=5) as http:
                for step in range(len(STEPS)):
                    if killed.is_set():
                        return
                    try:
                        reply = http.post(f"{proc.url}/v1/update/", content=_request(machine, step))
                    except httpx.HTTPError:
                        return  # the server died under us: this step is not acknowledged
                    assert reply.status_code == 200
                    etree.fromstring(reply.content)
                    with acked_lock:
                        acked[machine] = step

        with ThreadPoolExecutor(max_workers=6) as pool:
            futures = [pool.submit(walk, m) for m in MACHINES]
            wait_until(
                lambda: sum(v + 1 for v in acked.values()) >= 40, timeout=30, what="40 acknowledged requests"
            )
            proc.kill()  # SIGKILL while requests are in flight
            killed.set()
            for future in futures:
                future.result()
        reader.join(timeout=10)
        assert not reader.is_alive()
        assert acked and feed_seen
        last_seen = feed_seen[-1]["id"]
    finally:
        proc.stop()

    # Restart on the same data dir and database (in a thread: only the killed one had to be a process).
    proc = run_server_in_thread(ServerSettings(data_dir=data_dir, db_url=db_url, token=proc.token))  # type: ignore[assignment]
    try:
        with _admin(proc) as client:
            instances = {
                i["machine_id"]: i
                for i in client.get("/api/v1/instances", params={"limit": 1000}).json()["instances"]
            }
            for machine, step in acked.items():
                status = instances[machine]["status"]
                order = [s for s, _ in STEPS]
                # Acknowledged means committed; one more (unacknowledged) step may also have committed.
                assert order.index(status) in (step, step + 1), (machine, status, step)
                history = client.get(f"/api/v1/instances/{machine}/history").json()["history"]
                assert [h["status"] for h in history][::-1] == order[: order.index(status) + 1]
            kinds = [a["kind"] for a in client.get("/api/v1/activity").json()["activity"]]
            assert kinds.count("RolloutStarted") == 1 and "ReleasePublished" in kinds

            # The feed resumes after the last id the client saw, with everything committed since.
            head = client.get("/api/v1/info").json()["feed_id"]
            assert head >= last_seen
            client.post("/api/v1/groups/stable/pause")  # a change after the restart
            new_head = client.get("/api/v1/info").json()["feed_id"]
            rest = read_feed(proc.url, last_seen, until=lambda evs: evs[-1]["id"] >= new_head)
            ids = [e["id"] for e in rest]
            assert ids == sorted(set(ids)) and ids[0] > last_seen and ids[-1] == new_head
            # Replaying pre-kill + resumed events gives exactly the database's final instance states.
            final: dict[str, dict[str, Any]] = {}
            for event in [*feed_seen, *rest]:
                if event["event"] == "instance":
                    final[event["data"]["machine_id"]] = event["data"]
            assert {m: d["status"] for m, d in final.items()} == {
                m: i["status"] for m, i in instances.items()
            }
    finally:
        proc.stop()


def test_two_servers_share_one_postgresql(tmp_path: Path, pg_url: str) -> None:
    db_url = pg_url
    keys = tmp_path / "keys"
    write_keypair(keys, generate_private_key())
    first = run_server_in_thread(ServerSettings(data_dir=tmp_path / "a", db_url=db_url, token="t"))
    second = run_server_in_thread(ServerSettings(data_dir=tmp_path / "b", db_url=db_url, token="t"))
    try:
        with _admin(first) as client:
            start = client.get("/api/v1/info").json()["feed_id"]
            client.post("/api/v1/groups/beta/pause")
        seen = read_feed(second.url, start, until=lambda evs: evs[-1]["data"].get("kind") == "GroupPaused")
        assert seen[-1]["id"] > start  # B's feed carries A's change
        # B's group cache refreshes within seconds: it refuses updates in the paused group too.
        with _admin(second) as client:
            wait_until(lambda: client.get("/api/v1/groups/beta").json()["policy"]["updates_enabled"] is False)
        omaha_reply = httpx.post(f"{second.url}/v1/update/", content=request_xml("x1", OLD, track="beta"))
        assert omaha_reply.status_code == 200
        with _admin(first) as client:
            assert client.get("/api/v1/instances/x1").json()["group"] == "beta"  # A sees B's registration
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow
def test_a_second_server_on_one_sqlite_database_refuses_to_start(data_dir: Path) -> None:
    first = start_server_process(data_dir)
    try:
        with pytest.raises(RuntimeError) as refused:
            start_server_process(data_dir)
        message = str(refused.value)
        assert "exited with 1" in message
        assert (
            f"is in use by another coreroll server (pid {first.pid}; lock file {data_dir / 'coreroll.db.lock'})"
            in message
        )
        assert "One server per SQLite database" in message and "PostgreSQL" in message
        with _admin(first) as client:  # the first one is untouched
            assert client.post("/api/v1/groups/stable/pause").status_code == 200
        first.kill()  # SIGKILL: the kernel releases the lock, so a restart is not blocked
        again = start_server_process(data_dir)
        with _admin(again) as client:
            assert client.get("/api/v1/groups/stable").json()["policy"]["updates_enabled"] is False
        again.stop()
    finally:
        first.stop()


async def test_storage_refuses_a_sqlite_file_another_storage_serves(tmp_path: Path) -> None:
    from coreroll.server.storage import Storage, StorageError

    url = f"sqlite:///{tmp_path / 'one.db'}"
    first = Storage(url, lambda: 1.0)
    await first.start()
    second = Storage(url, lambda: 1.0)
    with pytest.raises(StorageError, match=r"one\.db is in use by another coreroll server \(pid \d+"):
        await second.start()
    await second.close()
    await first.close()  # releases it
    await second.start()
    await second.close()


def _check_all(urls: list[str], machines: list[str]) -> list[str]:
    """One update check per machine, all at once, machine i on ``urls[i % len(urls)]``."""

    async def run() -> list[str]:
        limits = httpx.Limits(max_connections=len(machines))
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            replies = await asyncio.gather(
                *(
                    http.post(f"{urls[n % len(urls)]}/v1/update/", content=request_xml(m, OLD))
                    for n, m in enumerate(machines)
                )
            )
        assert all(r.status_code == 200 for r in replies)
        return [check_status(etree.fromstring(r.content)) for r in replies]

    return asyncio.run(run())


@pytest.mark.slow
def test_two_server_processes_on_one_postgresql_share_limits_pauses_and_releases(
    data_dir: Path, pg_url: str
) -> None:
    """Two `coreroll server` processes on one PostgreSQL database (and one data dir, for the
        payloads): max concurrent 3 holds over 200 simultaneous checks split across both (and 8 from one
    machine), a release
        published through one is offered by the other, and a pause through one stops grants on both."""
    a = start_server_process(data_dir, pg_url)
    b = start_server_process(data_dir, pg_url)
    try:
        with _admin(a) as admin_a, _admin(b) as admin_b:
            policy = {"max_concurrent": 3}
            assert admin_a.put("/api/v1/groups/stable/policy", json=policy).status_code == 200
            assert admin_a.post("/api/v1/releases", json={"version": NEW, "synthetic": True, "channel": "stable",
                                                          "image_size": 1024}).status_code == 201  # fmt: skip

            # B offers the release A published once its catalog refreshes (every 2 s), and serves it.
            def b_offers() -> tuple[str, str] | None:
                reply = httpx.post(f"{b.url}/v1/update/", content=request_xml("probe", OLD), timeout=10)
                check = etree.fromstring(reply.content).find("app/updatecheck")
                if check.get("status") != "ok":
                    return None
                return check.find("urls/url").get("codebase"), check.find("manifest/packages/package").get(
                    "name"
                )

            url, name = wait_until(b_offers, timeout=15, what="B to offer the release published through A")
            assert url.startswith(b.url)
            assert httpx.head(f"{url}{name}", timeout=10).status_code == 200

            # Eight checks at once from one machine, split across both: it is granted once, and stays so.
            assert _check_all([a.url, b.url], ["twin"] * 8) == ["ok"] * 8
            twin = admin_a.get("/api/v1/instances/twin").json()
            assert twin["status"] == "UpdateGranted"
            assert [h["status"] for h in twin["history"]] == ["UpdateGranted"]

            # 200 machines at once, half on each server: 1 slot is left besides the probe's and twin's.
            machines = [f"{i:032x}" for i in range(200)]
            answers = _check_all([a.url, b.url], machines)
            assert answers.count("ok") == 1 and answers.count("noupdate") == 199
            granted = admin_b.get(
                "/api/v1/instances", params={"status": "UpdateGranted", "limit": 500}
            ).json()
            assert granted["total"] == 3
            held = admin_a.get("/api/v1/instances", params={"status": "OnHold", "limit": 500}).json()
            assert held["total"] == 199
            assert {i["status_reason"] for i in held["instances"]} == {"max concurrent updates reached (3)"}

            # The probe completes (a slot frees); a pause through A holds the next machine on B at once.
            for etype in (13, 14, 3):
                httpx.post(f"{b.url}/v1/update/", content=event_xml("probe", OLD, etype, 1), timeout=10)
            httpx.post(f"{b.url}/v1/update/", content=request_xml("probe", NEW, previous=OLD), timeout=10)
            assert admin_a.get("/api/v1/instances/probe").json()["status"] == "Complete"
            assert admin_a.post("/api/v1/groups/stable/pause").status_code == 200
            waiting = held["instances"][0]["machine_id"]
            assert _check_all([b.url], [waiting]) == ["noupdate"]
            assert admin_b.get(f"/api/v1/instances/{waiting}").json()["status_reason"] == (
                "updates disabled for the group"
            )
            # Resumed through A: B grants the free slot (at the latest after its next refresh).
            assert admin_a.post("/api/v1/groups/stable/resume").status_code == 200
            wait_until(
                lambda: _check_all([b.url], [waiting]) == ["ok"], timeout=15, what="B to grant after resume"
            )
            assert admin_a.get("/api/v1/instances", params={"status": "UpdateGranted"}).json()["total"] == 3
    finally:
        a.stop()
        b.stop()


async def test_schema_is_versioned_and_a_newer_database_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from coreroll.server import migrations
    from coreroll.server.storage import Storage, StorageError

    url = f"sqlite:///{tmp_path / 'v.db'}"
    storage = Storage(url, lambda: 1.0)
    await storage.start()
    await storage.start()  # idempotent: a second start finds the schema and its version
    await storage.close()
    head = migrations.script_directory().get_current_head()
    with sqlite3.connect(tmp_path / "v.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (migrations.revision_number(head),)
        ]  # what servers from before Alembic read
        conn.execute("UPDATE alembic_version SET version_num = 'ffee0001'")  # a newer server's revision
    newer = Storage(url, lambda: 1.0)
    with pytest.raises(StorageError, match="newer than this server"):
        await newer.start()
    await newer.close()
