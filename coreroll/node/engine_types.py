"""The update engine's value types: its schedule, the machine it speaks for, what it reports.

Public API (re-exported by `coreroll.node.engine`): `EngineTimings`, `NodeIdentity`,
`EngineSnapshot`, `CheckOutcome`, `fuzz(rng, value, spread)`.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineTimings:
    """Schedule and retry delays, in clock seconds (update_check_scheduler.cc defaults)."""

    first_check: float = 7 * 60
    first_check_fuzz: float = 5 * 60
    interval: float = 45 * 60
    interval_fuzz: float = 10 * 60
    retry_initial: float = 60.0
    retry_max: float = 4 * 3600.0
    mark_good_delay: float = 45.0
    download_retry_initial: float = 10.0
    download_retry_max: float = 300.0
    download_max_failures: int = 10


@dataclass(frozen=True)
class NodeIdentity:
    """What update_engine sends about the machine."""

    machine_id: str
    boot_id: str
    oem: str = ""
    oemversion: str = ""
    board: str = "amd64-usr"


@dataclass(frozen=True)
class EngineSnapshot:
    """update_engine's GetStatus, plus the last error code reported."""

    status: str
    progress: float
    new_version: str
    new_size: int | None  # None: unknown (a real host's update_engine sent one out of range)
    last_checked_time: int | None  # the same
    last_error: int | None = None


class CheckOutcome(enum.Enum):
    """How one attempt ended (decides when the next one runs)."""

    NO_UPDATE = "no-update"
    UPDATED = "updated"  # now UPDATED_NEED_REBOOT
    PINGED = "pinged"  # ping-only while waiting for the reboot
    FAILED = "failed"  # reported 3/0, back to idle
    UNREACHABLE = "unreachable"  # no answer from the server: retry with backoff
    BUSY = "busy"  # an attempt was already running


def fuzz(rng: random.Random, value: float, spread: float) -> float:
    """update_engine's FuzzInt: uniform in value +- spread/2."""
    return max(0.0, value + rng.uniform(-spread / 2, spread / 2))
