"""Prometheus: request metrics by route template (job ids stay out of labels) and activation-cache totals."""

from __future__ import annotations

from collections.abc import Iterator

from litestar import MediaType, Response, get
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from workers.activation_cache import ActivationCache

__all__ = [
    "JOBS_SUBMITTED",
    "CacheCollector",
    "MetricsController",
    "prometheus_config",
    "register_cache_collector",
]

JOBS_SUBMITTED = Counter("interp_jobs_submitted", "jobs accepted by the API", ["kind", "model"])


def prometheus_config() -> PrometheusConfig:
    return PrometheusConfig(app_name="interp", prefix="interp", group_path=True, exclude=["/metrics"])


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
        for name in ("hits", "misses", "bytes_read", "bytes_written"):
            yield CounterMetricFamily(f"interp_activation_cache_{name}", f"activation cache {name}", totals[name])
        yield GaugeMetricFamily("interp_activation_cache_size_bytes", "bytes held", totals["size_bytes"])


_collector: CacheCollector | None = None


def register_cache_collector(cache: ActivationCache) -> None:
    """One collector per process, pointed at the latest app's cache (tests build several apps)."""
    global _collector
    if _collector is None:
        _collector = CacheCollector(cache)
        REGISTRY.register(_collector)
    else:
        _collector.cache = cache
