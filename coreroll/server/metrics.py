"""Prometheus metrics, one registry per app (several servers can live in one test process).

``Metrics()``: ``requests`` (counter by result), ``latency`` (histogram of Omaha handling),
``granted`` / ``failures`` (by group), ``feed_clients`` (gauge), ``feed_reads`` (by reason:
fanout, catchup), ``feed_overflows``, ``feed_refused``,
``connections`` (gauge) and ``connections_dropped`` (by reason); ``render(status_counts)`` returns
the text exposition with ``coreroll_instances{group,status}`` filled from the registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "coreroll_omaha_requests", "Omaha apps answered, by result", ["result"], registry=self.registry
        )
        self.latency = Histogram(
            "coreroll_omaha_request_seconds",
            "Time to handle one Omaha request",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.granted = Counter(
            "coreroll_updates_granted", "Updates granted", ["group"], registry=self.registry
        )
        self.failures = Counter(
            "coreroll_update_failures", "Updates failed (3/0)", ["group"], registry=self.registry
        )
        self.feed_clients = Gauge("coreroll_feed_clients", "Connected feed clients", registry=self.registry)
        self.feed_reads = Counter(
            "coreroll_feed_reads",
            "Change-log reads for the feed: one per fan-out to every client, or one client catching up",
            ["reason"],
            registry=self.registry,
        )
        self.feed_overflows = Counter(
            "coreroll_feed_overflows",
            "Times a feed client fell too far behind and had to catch up from the database",
            registry=self.registry,
        )
        self.feed_refused = Counter(
            "coreroll_feed_refused",
            "Feed clients refused (--max-feed-clients or --max-feed-clients-per-address reached)",
            registry=self.registry,
        )
        self.connections = Gauge("coreroll_connections", "Open HTTP connections", registry=self.registry)
        self.connections_dropped = Counter(
            "coreroll_connections_dropped",
            "Connections closed by the server's bounds (coreroll.server.connguard), by reason",
            ["reason"],
            registry=self.registry,
        )
        self._children: dict[str, Counter] = {}
        self.instances = Gauge(
            "coreroll_instances", "Registered instances", ["group", "status"], registry=self.registry
        )

    def count(self, result: str) -> None:
        """``requests.labels(result).inc()`` with the child cached (labels() costs ~10 us per call)."""
        child = self._children.get(result)
        if child is None:
            child = self._children[result] = self.requests.labels(result)
        child.inc()

    def render(self, status_counts: list[tuple[str | None, str, int]]) -> bytes:
        self.instances.clear()
        for group, status, count in status_counts:
            self.instances.labels(group=group or "", status=status).set(count)
        return generate_latest(self.registry)
