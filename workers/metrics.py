"""Every Prometheus metric the service exports, each name written once here (torch-free: prometheus_client only).

The API process counts submissions and reads the shared totals at scrape time (queue depths from the broker,
activation-cache counters from the cache); workers count and time the jobs they run and the models they load. In
a prefork worker these objects write prometheus-client's per-process files (``PROMETHEUS_MULTIPROC_DIR``, see
:mod:`workers.metrics_server`), so the gauges say how they add up over the worker's processes. Labels are kind,
model, status, code, queue and device only: never a job id, a key or a tenant.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

__all__ = [
    "CACHE_COUNTERS",
    "CACHE_SIZE",
    "GPU_MEMORY_ALLOCATED",
    "GPU_MEMORY_RESERVED",
    "JOBS_FINISHED",
    "JOBS_SUBMITTED",
    "JOB_DURATION",
    "JOB_ERRORS",
    "JOB_QUEUE_WAIT",
    "METRIC_TYPES",
    "MODELS_LOADED",
    "MODEL_LOAD",
    "QUEUE_DEPTH",
    "GpuMemoryCollector",
    "register_gpu_collector",
    "sample_gpu_memory",
]

JOB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Seconds, 10 ms … 10 min: a cached SAE encode to a full patching sweep at its time limit."""
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: a tiny random model to a first GGUF conversion."""

JOBS_SUBMITTED = Counter("interp_jobs_submitted", "jobs accepted and queued by the API", ["kind", "model"])
JOBS_FINISHED = Counter(
    "interp_jobs_finished", "jobs a worker brought to an end, by final status", ["kind", "model", "status"]
)
JOB_ERRORS = Counter("interp_job_errors", "jobs a worker failed, by error code", ["kind", "model", "code"])
JOB_DURATION = Histogram(
    "interp_job_duration_seconds", "from a worker's start of a job to its end", ["kind", "model"], buckets=JOB_BUCKETS
)
JOB_QUEUE_WAIT = Histogram(
    "interp_job_queue_wait_seconds", "from submission to a worker's first start (started_at - created_at)",
    ["kind", "model"], buckets=JOB_BUCKETS,
)
MODEL_LOAD = Histogram("interp_model_load_seconds", "time to load a model into a worker's pool", ["model"],
                       buckets=LOAD_BUCKETS)
MODELS_LOADED = Gauge("interp_models_loaded", "models held in the worker's pools (summed over its live processes)",
                      multiprocess_mode="livesum")
GPU_MEMORY_ALLOCATED = Gauge(
    "interp_gpu_memory_allocated_bytes", "bytes of tensors torch holds on each CUDA device (live processes summed)",
    ["device"], multiprocess_mode="livesum", registry=None,
)
GPU_MEMORY_RESERVED = Gauge(
    "interp_gpu_memory_reserved_bytes", "bytes torch's caching allocator reserved on each CUDA device",
    ["device"], multiprocess_mode="livesum", registry=None,
)
"""Registered through :class:`GpuMemoryCollector` (read at scrape time), only in processes that run torch."""

QUEUE_DEPTH = "interp_queue_depth"
"""Gauge, read from the broker at scrape time by the API: messages waiting on each queue."""
CACHE_COUNTERS: Mapping[str, str] = {
    name: f"interp_activation_cache_{name}" for name in ("hits", "misses", "bytes_read", "bytes_written")
}
"""Counters, read at scrape time by the API from the shared cache's totals (``ActivationCache.totals``)."""
CACHE_SIZE = "interp_activation_cache_size_bytes"

METRIC_TYPES: Mapping[str, str] = {
    **{family.name: family.type for metric in (
        JOBS_SUBMITTED, JOBS_FINISHED, JOB_ERRORS, JOB_DURATION, JOB_QUEUE_WAIT, MODEL_LOAD, MODELS_LOADED,
        GPU_MEMORY_ALLOCATED, GPU_MEMORY_RESERVED,
    ) for family in metric.describe()},
    QUEUE_DEPTH: "gauge",
    **dict.fromkeys(CACHE_COUNTERS.values(), "counter"),
    CACHE_SIZE: "gauge",
}
"""Family name → type of every metric defined here (the HTTP metrics are Litestar's: ``service.metrics``)."""


def sample_gpu_memory() -> None:
    """Set the GPU gauges from torch, in a process whose CUDA context is up; otherwise leave them absent.

    Never imports torch (the API must not) and never starts CUDA (a prefork parent that did could not fork
    usable children): a process that has not touched CUDA holds nothing on it.
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return
    for index in range(torch.cuda.device_count()):
        device = f"cuda:{index}"
        GPU_MEMORY_ALLOCATED.labels(device=device).set(torch.cuda.memory_allocated(index))
        GPU_MEMORY_RESERVED.labels(device=device).set(torch.cuda.memory_reserved(index))


class GpuMemoryCollector(Collector):
    """The GPU gauges, sampled at scrape time: for a process that serves its own metrics (embedded, solo pool).

    A prefork child cannot answer a scrape mid-job, so it samples after every job and model load instead and
    its parent reads the per-process files.
    """

    def collect(self) -> Iterator[Metric]:
        sample_gpu_memory()
        for gauge in (GPU_MEMORY_ALLOCATED, GPU_MEMORY_RESERVED):
            yield from (family for family in gauge.collect() if family.samples)  # absent, not empty, without CUDA


_gpu_collector: GpuMemoryCollector | None = None


def register_gpu_collector() -> None:
    """Once per process, in processes that run jobs (a worker runtime), never in the API's own."""
    global _gpu_collector
    if _gpu_collector is None:
        _gpu_collector = GpuMemoryCollector()
        REGISTRY.register(_gpu_collector)
