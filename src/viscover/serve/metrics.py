"""Prometheus metrics of one server: requests by route and status, latencies, catalogue and index sizes.

A server of several processes sets PROMETHEUS_MULTIPROC_DIR (serve/workers.py) before any of them starts: each
process then keeps its counts in files there, and a scrape answered by any of them adds up every process's (also
those of a worker that died and was replaced: its requests happened)."""

from __future__ import annotations

import os
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """A registry of its own per app, so that several apps (tests) never share counters; with several server
    processes, a scrape reads the counts of all of them."""

    def __init__(self, sizes: Callable[[], dict[str, float]]):
        self.registry = CollectorRegistry()
        self.requests = Counter("viscover_http_requests_total", "HTTP requests answered.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("viscover_http_request_seconds", "Time to answer an HTTP request.",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.size = Gauge("viscover_catalog_size", "Catalogue and index sizes.", ["what"], registry=self.registry,
                          multiprocess_mode="mostrecent")  # several processes: the latest any of them read
        self._sizes = sizes
        self._scraped = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self._scraped = CollectorRegistry()
            MultiProcessCollector(self._scraped)

    def observe_scope(self, scope: dict, status: int, seconds: float) -> None:
        """Count one answered request of an ASGI scope (its route as the router matched it)."""
        route = scope.get("route")
        name = getattr(route, "path", None) or "(unmatched)"  # the template, never the raw path: bounded labels
        self.requests.labels(scope["method"], name, str(status)).inc()
        self.latency.labels(scope["method"], name).observe(seconds)

    def render(self) -> Response:
        try:
            for what, value in self._sizes().items():
                self.size.labels(what).set(value)
        except Exception:  # sizes are best effort: metrics must answer even with a broken index
            pass
        return Response(generate_latest(self._scraped), media_type="text/plain; version=0.0.4; charset=utf-8")
