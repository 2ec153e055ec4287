"""A node's state directory: what `coreroll agent` and the fleet create before a node first boots.

Layout: the disk (`coreroll.node.partitions`: disk.json, usr-a.img, usr-b.img), `update.conf`
(GROUP, SERVER, REBOOT_STRATEGY, LOCKSMITHD_*), `machine-id`, and later `update_engine.json`.

Public API (re-exported by `coreroll.node.agent`): `UPDATE_CONF`, `MACHINE_ID`,
`provision_node(state_dir, *, version, image, server, group="stable", strategy="etcd-lock",
lock_group="", machine_id=None, window_start=None, window_length=None, fsync=True) -> str`
(a fresh install; returns the machine id), `read_machine_id(state_dir)`,
`omaha_url(server) -> str` (a server base URL -> its Omaha endpoint `.../v1/update/`).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from coreroll.node.partitions import Disk
from coreroll.node.updateconf import UpdateConf

UPDATE_CONF = "update.conf"
MACHINE_ID = "machine-id"


def omaha_url(server: str) -> str:
    """`http://host:8400` -> `http://host:8400/v1/update/`; a URL already naming the path is kept."""
    url = server.strip()
    if url.rstrip("/").endswith("/v1/update"):
        return url.rstrip("/") + "/"
    return url.rstrip("/") + "/v1/update/"


def read_machine_id(state_dir: Path) -> str:
    path = Path(state_dir) / MACHINE_ID
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"{path} is empty")
    return value


def provision_node(
    state_dir: Path,
    *,
    version: str,
    image: bytes,
    server: str,
    group: str = "stable",
    strategy: str = "etcd-lock",
    lock_group: str = "",
    machine_id: str | None = None,
    window_start: str | None = None,
    window_length: str | None = None,
    fsync: bool = True,
) -> str:
    """A fresh install in `state_dir`: disk (USR-A = `version`), update.conf, machine-id."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    Disk.create(state_dir, version, image, fsync=fsync)
    conf = UpdateConf.load(state_dir / UPDATE_CONF)
    conf.set("GROUP", group)
    conf.set("SERVER", omaha_url(server))
    conf.set("REBOOT_STRATEGY", strategy)
    if lock_group:
        conf.set("LOCKSMITHD_GROUP", lock_group)
    if window_start and window_length:
        conf.set("LOCKSMITHD_REBOOT_WINDOW_START", window_start)
        conf.set("LOCKSMITHD_REBOOT_WINDOW_LENGTH", window_length)
    conf.save(state_dir / UPDATE_CONF)
    machine_id = machine_id or uuid.uuid4().hex
    (state_dir / MACHINE_ID).write_text(machine_id + "\n")
    return machine_id
