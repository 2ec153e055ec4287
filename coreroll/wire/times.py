"""The one timestamp format coreroll writes: ISO 8601 in UTC with milliseconds and a `Z`
(`2026-05-01T12:00:00.250Z`), in the node status document, commands, audit records and the
update server's API. Readers take any ISO 8601 (`coreroll.watch.parse`)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_time(epoch: float) -> str:
    """Epoch seconds -> `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
