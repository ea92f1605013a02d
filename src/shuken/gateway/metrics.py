"""Prometheus metrics for the gateway: one registry per app, so tests and servers never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class EngineStatsCollector:
    """Reads queue depth and running sequences from the engines at scrape time (never stale)."""

    def __init__(self, host):
        self.host = host

    def collect(self):
        queued = GaugeMetricFamily("shuken_queue_depth", "Requests waiting for a slot", labels=["model"])
        running = GaugeMetricFamily("shuken_running_requests", "Requests being generated", labels=["model"])
        capacity = GaugeMetricFamily("shuken_slots", "Sequences an engine decodes together", labels=["model"])
        for name, engine in list(self.host.engines.items()):
            stats = engine.stats()
            queued.add_metric([name], stats.queued)
            running.add_metric([name], stats.running)
            capacity.add_metric([name], stats.capacity)
        yield from (queued, running, capacity)


class GatewayMetrics:
    def __init__(self, host):
        self.registry = CollectorRegistry()
        self.requests = Counter("shuken_requests", "API requests by model, endpoint and HTTP status",
                                ["model", "endpoint", "status"], registry=self.registry)
        self.latency = Histogram("shuken_request_latency_seconds", "Time to the whole response",
                                 ["model", "endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ttft = Histogram("shuken_time_to_first_token_seconds", "Time to the first generated text",
                              ["model", "endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tokens = Counter("shuken_tokens", "Tokens processed, by direction (prompt = in, completion = out)",
                              ["model", "direction"], registry=self.registry)
        self.registry.register(EngineStatsCollector(host))
