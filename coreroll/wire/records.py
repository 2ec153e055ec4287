"""The JSON documents coreroll writes under its command and audit keys (`coreroll.wire.keys`).

- `CommandRecord(action, args, by, at)` at `coreroll/v1/commands/<machine-id>/<id>`: written by the
  dashboard's action layer, run by the node's agent (`coreroll.node.commandrunner`), shown as a
  pending command by the dashboard (`coreroll.watch.parse.parse_command`).
- `AuditRecord(at, by, action, target, result)` at `coreroll/v1/audit/<id>`: one per intervention,
  written by `coreroll.audit.append_audit`, read by `coreroll lock`'s audit listing and the
  dashboard's activity log (`coreroll.watch.activity`).

`at` is `coreroll.wire.times.iso_time`. Readers stay field-by-field and hostile-input safe; these
types fix what the writers put on the wire, and `FIELDS` names the keys both sides use.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coreroll.wire.times import iso_time


@dataclass(frozen=True, slots=True)
class CommandRecord:
    FIELDS = ("action", "args", "by", "at")

    action: str
    args: Mapping[str, Any] = field(default_factory=dict)
    by: str | None = None
    at: str = field(default_factory=lambda: iso_time(time.time()))

    def encode(self) -> bytes:
        return json.dumps(
            {"action": self.action, "args": dict(self.args), "by": self.by, "at": self.at}
        ).encode()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    FIELDS = ("at", "by", "action", "target", "result")

    action: str
    target: str
    result: str
    by: str
    at: str = field(default_factory=lambda: iso_time(time.time()))

    def encode(self) -> bytes:
        record = {
            "at": self.at,
            "by": self.by,
            "action": self.action,
            "target": self.target,
            "result": self.result,
        }
        return json.dumps(record, separators=(",", ":")).encode()
