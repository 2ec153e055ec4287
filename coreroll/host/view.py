"""The latest of everything read from a real host, and the status document built from it (the same
document the simulated agent publishes: `coreroll.node.nodestatus.build_report`).

- version, channel (GROUP), server (SERVER), reboot strategy, lock group and window, hostname, boot
  id and boot time: `coreroll.host.facts`;
- the active USR partition: `coreroll.host.usr`; its GPT attributes: `coreroll.host.cgpt` when a
  `cgpt` is on PATH (Flatcar's own, or one mounted into the container);
- the update status: `coreroll.host.update_engine` (polled here; signals go to `set_engine`).

Partition versions: the active one runs `version`; the other one's is known only while
update_engine says UPDATED_NEED_REBOOT (it holds `new_version`), else null. Unknown values are
null; `holds_lock` is null (locksmithd holds real hosts' locks; the dashboard reads the semaphore).

Public API: `HostView(root, engine, *, cgpt="cgpt")` (reads the facts at once: HostFileError
when the machine id is unreadable): `async refresh()`, `set_engine(snapshot, problems)`,
`machine_id`, `facts`, `usr`, `engine_via`, `problems() -> list[str]`,
`document(reported_at, last_command=None) -> dict`.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from coreroll.host.cgpt import UsrAttributes, read_usr_attributes
from coreroll.host.engine_status import UNKNOWN_STATUS
from coreroll.host.facts import HostFacts, read_facts
from coreroll.host.update_engine import EngineError, UpdateEngine
from coreroll.host.usr import ActiveUsr, active_usr
from coreroll.node.engine_types import EngineSnapshot
from coreroll.node.nodestatus import RebootInfo, build_report
from coreroll.node.partitions import LABELS
from coreroll.omaha.codes import UPDATE_STATUS_UPDATED_NEED_REBOOT

__all__ = ["HostView"]

_NEED_REBOOT = str(UPDATE_STATUS_UPDATED_NEED_REBOOT)


class HostView:
    def __init__(self, root: Path, engine: UpdateEngine | None, *, cgpt: str = "cgpt") -> None:
        self.root = Path(root)
        self.engine = engine
        self.cgpt = cgpt
        self.facts: HostFacts = read_facts(self.root)
        self.machine_id = self.facts.machine_id
        self.usr = ActiveUsr(None, "", None, ())
        self.attributes: list[UsrAttributes] = []
        self._cgpt_problems: list[str] = []
        self.snapshot = EngineSnapshot(UNKNOWN_STATUS, 0.0, "", 0, 0)
        self._engine_problems: list[str] = []
        self.engine_via: str | None = None

    async def refresh(self) -> None:
        """Read everything again (the machine id stays: it is the key the reports live under)."""
        facts = read_facts(self.root)
        self.facts = dataclasses.replace(facts, machine_id=self.machine_id)
        self.usr = active_usr(self.root)
        self.attributes, self._cgpt_problems = [], []
        if shutil.which(self.cgpt) is not None:
            if self.usr.disk is None:
                self._cgpt_problems = ["cgpt show: no disk holding USR-A/USR-B found in sysfs"]
            else:
                self.attributes, self._cgpt_problems = await read_usr_attributes(self.usr.disk, self.cgpt)
        if self.engine is not None:
            try:
                snapshot, problems, self.engine_via = await self.engine.status()
            except EngineError as exc:
                self.snapshot = EngineSnapshot(UNKNOWN_STATUS, 0.0, "", 0, 0)
                self._engine_problems, self.engine_via = [str(exc)], None
            else:
                self.set_engine(snapshot, problems)

    def set_engine(self, snapshot: EngineSnapshot, problems: list[str]) -> None:
        self.snapshot = snapshot
        self._engine_problems = list(problems)

    def problems(self) -> list[str]:
        return [*self.facts.problems, *self.usr.problems, *self._cgpt_problems, *self._engine_problems]

    def _partitions(self) -> list[dict[str, Any]]:
        attributes = {a.label: a for a in self.attributes}
        active = self.usr.label
        out = []
        for label in LABELS:
            if label == active:
                version = self.facts.version
            elif active is not None and self.snapshot.status == _NEED_REBOOT and self.snapshot.new_version:
                version = self.snapshot.new_version
            else:
                version = None
            attr = attributes.get(label)
            out.append(
                {
                    "label": label,
                    "version": version,
                    "priority": attr.priority if attr else None,
                    "tries": attr.tries if attr else None,
                    "successful": attr.successful if attr else None,
                }
            )
        return out

    def document(self, reported_at: float, last_command: dict[str, Any] | None = None) -> dict[str, Any]:
        facts, conf = self.facts, self.facts.conf
        return build_report(
            machine_id=self.machine_id,
            hostname=facts.hostname,
            channel=facts.channel,
            server=facts.server,
            version=facts.version,
            active_partition=self.usr.label,
            partitions=self._partitions(),
            update=self.snapshot,
            reboot=RebootInfo(conf.reboot_strategy, conf.locksmith_group, facts.window, None),
            boot_id=facts.boot_id,
            booted_at=facts.booted_at,
            reported_at=reported_at,
            last_command=last_command,
        )
