"""The API's ``/metrics``: request metrics by route template (job ids stay out of labels), and what the API reads
at scrape time from the shared parts: queue depths from the broker and activation-cache totals from the cache.

The metric names are :mod:`workers.metrics`'s; in embedded mode the worker thread's job metrics land in the same
registry, so this one ``/metrics`` has them all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from celery import Celery
from litestar import MediaType, Response, get
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from workers.activation_cache import ActivationCache
from workers.metrics import CACHE_COUNTERS, CACHE_SIZE, JOBS_SUBMITTED, QUEUE_DEPTH

__all__ = [
    "HTTP_METRIC_TYPES",
    "JOBS_SUBMITTED",
    "CacheCollector",
    "MetricsController",
    "QueueDepthCollector",
    "prometheus_config",
    "register_collectors",
]

log = logging.getLogger(__name__)

_PREFIX = "interp"
HTTP_METRIC_TYPES = {
    f"{_PREFIX}_requests": "counter",
    f"{_PREFIX}_requests_error": "counter",
    f"{_PREFIX}_request_duration_seconds": "histogram",
    f"{_PREFIX}_requests_in_progress": "gauge",
}
"""The families Litestar's middleware makes from the prefix (labels: method, path template, status_code, app_name);
a test checks a live app exports exactly these."""


def prometheus_config() -> PrometheusConfig:
    return PrometheusConfig(app_name="interp", prefix=_PREFIX, group_path=True, exclude=["/metrics"])


class MetricsController(PrometheusController):
    path = "/metrics"
    tags = ["health"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get(
        operation_id="metrics",
        media_type=MediaType.TEXT,
        summary="Prometheus metrics",
        response_description="the Prometheus text exposition format (`text/plain; version=…`)",
    )
    async def get(self) -> Response[str]:
        """Litestar's handler, declared again so that the document names it and says the body is plain text."""
        response: Response[str] = await PrometheusController.get.fn(self)
        return response


class CacheCollector(Collector):
    """Reads the shared cache's counters at scrape time (Redis hash in production, in-process in embedded)."""

    def __init__(self, cache: ActivationCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        try:
            totals = self.cache.totals()
        except Exception:  # an unreachable Redis must not break /metrics
            return
        for name, metric in CACHE_COUNTERS.items():
            yield CounterMetricFamily(metric, f"activation cache {name}", totals[name])
        yield GaugeMetricFamily(CACHE_SIZE, "bytes held", totals["size_bytes"])


class QueueDepthCollector(Collector):
    """Messages waiting on each queue, asked of the broker at scrape time through kombu.

    A passive declare is the broker's own count: the Redis lists of the model-group queues in production, the
    in-memory transport's queues in embedded mode. One connection per scrape, at most one retry, so a broker
    outage costs a scrape about the broker timeout and leaves the gauge out.
    """

    def __init__(self, celery: Celery, queues: Sequence[str]) -> None:
        self.celery = celery
        self.queues = tuple(queues)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Nothing: registering the collector must not connect to the broker (the registry collects otherwise)."""
        return iter(())

    def depths(self) -> dict[str, int]:
        from amqp.exceptions import ChannelError  # kombu's virtual transports raise amqp's error

        depths: dict[str, int] = {}
        with self.celery.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            channel = connection.channel()
            try:
                for queue in self.queues:
                    try:
                        depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
                    except ChannelError:  # never declared, or drained (Redis drops an empty list)
                        depths[queue] = 0
            finally:
                channel.close()
        return depths

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            depths = self.depths()
        except Exception as exc:  # an unreachable broker must not break /metrics
            log.warning("queue depths unavailable: %s", type(exc).__name__)
            return
        family = GaugeMetricFamily(QUEUE_DEPTH, "messages waiting on each queue", labels=["queue"])
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family


_cache_collector: CacheCollector | None = None
_queue_collector: QueueDepthCollector | None = None


def register_collectors(cache: ActivationCache, celery: Celery | None, queues: Sequence[str]) -> None:
    """One collector of each per process, pointed at the latest app's cache and broker (tests build several apps);
    no broker (a test's own queue), no queue depths."""
    global _cache_collector, _queue_collector
    if _cache_collector is None:
        _cache_collector = CacheCollector(cache)
        REGISTRY.register(_cache_collector)
    _cache_collector.cache = cache
    if celery is None:
        if _queue_collector is not None:
            _queue_collector.queues = ()
        return
    if _queue_collector is None:
        _queue_collector = QueueDepthCollector(celery, queues)
        REGISTRY.register(_queue_collector)
    _queue_collector.celery, _queue_collector.queues = celery, tuple(queues)
