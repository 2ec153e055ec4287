"""The upstream that ``bench/omaha.py --sync`` has the server follow while it measures.

``BenchUpstream(interval)`` starts the sync tests' fixture upstream (``tests.server.upstream_fixture``)
on 127.0.0.1 with stable, beta and alpha on amd64-usr and arm64-usr. Stable is older than the
bench's fleet version, so the synced server keeps offering its own stable release and every check
stays ``noupdate``; alpha has a floor and a release with extras. ``server_args()`` are the server
flags that follow it (URL mode). ``next_round(url)`` publishes a new alpha release upstream on both
boards and asks the server for a pass now (``POST /api/v1/sync``), so each round records releases
while it is measured. ``report(url)`` is what ``GET /api/v1/sync`` says afterwards: passes, failed
channels, and whether alpha reached upstream's newest release on both boards.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.server.upstream_fixture import FixtureUpstream, UpstreamRelease

BOARDS = ("amd64-usr", "arm64-usr")
FIRST_ROUND_VERSION = 5000  # alpha release published before round r: f"{5000 + r}.0.0"


class BenchUpstream:
    def __init__(self, interval: float, token: str) -> None:
        self.interval = interval
        self.token = token
        channels: dict[tuple[str, str], list[UpstreamRelease]] = {}
        for board in BOARDS:
            channels[("stable", board)] = [UpstreamRelease("4800.0.0")]
            channels[("beta", board)] = [UpstreamRelease("4890.0.0")]
            channels[("alpha", board)] = [
                UpstreamRelease("4900.0.0", floor=True, floor_reason="bench floor"),
                UpstreamRelease("4950.0.0", extras=("oem-azure.gz",)),
            ]
        self.fixture = FixtureUpstream(channels)
        self.newest_alpha = "4950.0.0"
        self.rounds = 0

    def server_args(self) -> list[str]:
        return ["--sync", f"{self.fixture.url}/v1/update/", "--sync-interval", f"{self.interval:g}"]

    def next_round(self, url: str) -> None:
        self.newest_alpha = f"{FIRST_ROUND_VERSION + self.rounds}.0.0"
        self.rounds += 1
        for board in BOARDS:
            self.fixture.publish("alpha", board, UpstreamRelease(self.newest_alpha))
        reply = httpx.post(
            f"{url}/api/v1/sync", headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        reply.raise_for_status()  # 202: the pass starts now and runs while the round is measured

    def report(self, url: str, wait_seconds: float = 120) -> dict[str, Any]:
        """After the rounds: wait for one more pass to end, then summarise ``GET /api/v1/sync``."""
        reply = httpx.post(f"{url}/api/v1/sync", params={"wait": f"{wait_seconds:g}"},
                           headers={"Authorization": f"Bearer {self.token}"}, timeout=wait_seconds + 30)  # fmt: skip
        reply.raise_for_status()
        status = reply.json()
        channels = status.get("channels", [])
        alpha = {c["board"]: c.get("synced_version") for c in channels if c["channel"] == "alpha"}
        failed = [f"{c['channel']}/{c['board']}: {c['last_error']}" for c in channels if c.get("last_error")]
        return {
            "upstream_requests": len(self.fixture.requests),
            "passes": status.get("passes"),
            "interval_seconds": status.get("interval_seconds"),
            "newest_upstream_alpha": self.newest_alpha,
            "alpha_synced": alpha,
            "failed": failed,
            "refused": status.get("refused", []),
            "kept_up": all(alpha.get(board) == self.newest_alpha for board in BOARDS)
            and not failed
            and not status.get("refused"),
        }

    def stop(self) -> None:
        self.fixture.stop()
