"""What an intervention came to, as the dashboard shows it: `ActionResult(ok, message)`, and
`ReadOnlyError` when read-only mode refuses it. Kept apart from `coreroll.watch.actions` so the UI
can name them without importing the etcd and HTTP clients before it needs them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ActionResult", "ReadOnlyError"]


class ReadOnlyError(PermissionError):
    """The dashboard runs read-only: no intervention is allowed."""

    def __init__(self, action: str) -> None:
        super().__init__(f"read-only mode: {action} is not allowed")
        self.action = action


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
