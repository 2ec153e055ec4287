"""The retention purge for bench/omaha.py: a backlog for the server's retention task to delete while
update checks are measured (issue 18 §4: "a background task in small batches that never holds up
update checks").

``add_backlog(db, machines, activity)`` inserts, into a stopped server's SQLite file, ``machines``
instances silent for 60 days (copies of the bench's own rows under other ids: past the default
``--forget-instances-after`` of 30 days, not in the middle of an update) and ``activity`` records
120 days old (past the default ``--keep-activity`` of 90 days). ``purged(url)`` reads what the
retention task deleted so far from /metrics.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import httpx

SILENT_FOR = 60 * 86400.0
ACTIVITY_AGE = 120 * 86400.0
_PURGED = re.compile(r"^coreroll_retention_(instances_forgotten|activity_deleted)_total (\S+)$", re.M)


def add_backlog(db: Path, machines: int, activity: int) -> float:
    """Insert the backlog (the server must not be running); returns seconds taken."""
    started = time.perf_counter()
    now = time.time()
    with sqlite3.connect(db) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(instances)")]
        source = conn.execute("SELECT count(*) FROM instances").fetchone()[0]
        changed = {
            "machine_id": "? || machine_id",
            "last_check": f"{now - SILENT_FOR}",
            "created_at": f"{now - SILENT_FOR}",
            "update_in_progress": "0",
            "status": "4",  # Complete
        }
        select = ", ".join(changed.get(c, c) for c in columns)
        insert = (
            f"INSERT INTO instances ({', '.join(columns)}) SELECT {select} FROM instances"
            " WHERE machine_id NOT LIKE 'old%' LIMIT ?"  # the bench's own rows, not earlier copies
        )
        copy = 0
        while machines > 0:
            conn.execute(insert, (f"old{copy}-", min(machines, source)))
            machines -= source
            copy += 1
        conn.executemany(
            "INSERT INTO activity (at, kind, severity, message) VALUES (?, 'ChannelUpdated', 'info', ?)",
            ((now - ACTIVITY_AGE, f"bench backlog {n}") for n in range(activity)),
        )
    return time.perf_counter() - started


def purged(url: str) -> dict[str, float]:
    """``{"instances_forgotten": N, "activity_deleted": M}`` from the server's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = {name: float(value) for name, value in _PURGED.findall(text)}
    return {"instances_forgotten": found.get("instances_forgotten", 0.0),
            "activity_deleted": found.get("activity_deleted", 0.0)}  # fmt: skip
