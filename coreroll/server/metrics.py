"""Prometheus metrics, one registry per app (several servers can live in one test process).

``Metrics()``: ``count(result)`` (Omaha apps answered, by result) and ``observe_latency(seconds)``
(histogram of Omaha handling), both kept by ``OmahaCounts``,
``granted`` / ``failures`` (by group), ``feed_clients`` (gauge), ``feed_reads`` (by reason:
fanout, catchup), ``feed_overflows``, ``feed_refused``,
``connections`` (gauge) and ``connections_dropped`` (by reason), the retention task's counts
(``retention_forgotten``, ``retention_history``, ``retention_activity``, ``retention_failures``,
``retention_last_run``, ``retention_run_seconds``); ``render(status_counts)`` returns
the text exposition with ``coreroll_instances{group,status}`` filled from the registry.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class OmahaCounts(Collector):
    """``coreroll_omaha_requests`` by result and the ``coreroll_omaha_request_seconds`` histogram, kept
    as plain numbers: every update check adds to both, and prometheus_client's own Counter and
    Histogram take a lock per add (about 1.3 us a check; these cost a tenth). Read only on
    the event loop's thread, as they are written."""

    def __init__(self) -> None:
        self.results: dict[str, int] = {}
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bound (+Inf)
        self.latency_sum = 0.0

    def count(self, result: str) -> None:
        results = self.results
        results[result] = results.get(result, 0) + 1

    def observe(self, seconds: float) -> None:
        self.latency_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le: a bound holds its equal
        self.latency_sum += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "coreroll_omaha_requests", "Omaha apps answered, by result", labels=["result"]
        )
        for result, count in sorted(self.results.items()):
            requests.add_metric([result], count)
        yield requests
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), self.latency_counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "coreroll_omaha_request_seconds",
            "Time to handle one Omaha request",
            buckets=buckets,
            sum_value=self.latency_sum,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.omaha = OmahaCounts()
        self.registry.register(self.omaha)
        self.count = self.omaha.count  # count(result): one Omaha app answered
        self.observe_latency = self.omaha.observe  # observe_latency(seconds): one request handled
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
        self.retention_forgotten = Counter(
            "coreroll_retention_instances_forgotten",
            "Instances forgotten: not seen for --forget-instances-after and not in the middle of an update",
            registry=self.registry,
        )
        self.retention_history = Counter(
            "coreroll_retention_history_deleted",
            "Instance history entries deleted: of forgotten instances, or older than --keep-activity",
            registry=self.registry,
        )
        self.retention_activity = Counter(
            "coreroll_retention_activity_deleted",
            "Activity records deleted: older than --keep-activity",
            registry=self.registry,
        )
        self.retention_failures = Counter(
            "coreroll_retention_failures",
            "Retention runs that failed (retried next run)",
            registry=self.registry,
        )
        self.retention_last_run = Gauge(
            "coreroll_retention_last_run_timestamp_seconds",
            "When the last retention run finished (Unix time; 0: none yet)",
            registry=self.registry,
        )
        self.retention_run_seconds = Gauge(
            "coreroll_retention_last_run_duration_seconds",
            "How long the last retention run took, rests between batches included",
            registry=self.registry,
        )
        self.instances = Gauge(
            "coreroll_instances", "Registered instances", ["group", "status"], registry=self.registry
        )

    def render(self, status_counts: list[tuple[str | None, str, int]]) -> bytes:
        self.instances.clear()
        for group, status, count in status_counts:
            self.instances.labels(group=group or "", status=status).set(count)
        return generate_latest(self.registry)
