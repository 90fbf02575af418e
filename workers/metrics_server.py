"""A worker's own ``/metrics`` port (``INTERP_WORKER_METRICS_PORT``), safe under Celery's prefork pool.

Prefork children run the jobs and the parent answers the scrapes, so the children write prometheus-client's
per-process files (multiprocess mode) and the parent serves a :class:`MultiProcessCollector` over them. The
directory must be chosen before prometheus_client is first imported in the parent (it picks its value class then),
which is why this module imports it only inside its functions, and why :func:`use_multiprocess_dir` comes before
importing :mod:`workers.metrics` or anything that imports it. Single-process pools (solo, threads) serve the
default registry instead.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.core import Metric

__all__ = ["MULTIPROC_ENV", "forget_process", "serve_worker_metrics", "use_multiprocess_dir"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir() -> Path:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` (inherited by the children) at an empty directory of this worker's.

    A directory the operator set is emptied first, as prometheus-client requires between runs; otherwise a fresh
    temporary one is made and removed when the parent exits (not when a forked child does).
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path
    path = Path(tempfile.mkdtemp(prefix="interp-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    parent = os.getpid()

    def remove() -> None:
        if os.getpid() == parent:  # a forked child runs its parent's atexit hooks too, when it exits normally
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path


def forget_process(pid: int) -> None:
    """A child is gone: its live gauges (models loaded, GPU memory) stop counting; its counters stay."""
    from prometheus_client import multiprocess

    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _live_pids(path: Path) -> Iterable[int]:
    for name in glob.glob(str(path / "gauge_live*_*.db")):
        stem = Path(name).stem.rsplit("_", 1)[-1]
        if stem.isdigit():
            yield int(stem)


def serve_worker_metrics(port: int, *, multiprocess: bool, addr: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``port`` from a daemon thread of this (parent) process."""
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server, values
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import Collector

    if not multiprocess:
        start_http_server(port, addr=addr, registry=REGISTRY)
        return
    if values.ValueClass is values.MutexValue:
        raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_ENV} was set: children's metrics "
                           "would stay in their own memory")
    path = Path(os.environ[MULTIPROC_ENV])

    class LiveProcesses(Collector):
        """The children's files, after forgetting children that died without saying so (SIGKILL, hard limit)."""

        def __init__(self) -> None:
            self._files = MultiProcessCollector(None, str(path))  # type: ignore[no-untyped-call]

        def collect(self) -> Iterable[Metric]:
            for pid in set(_live_pids(path)):
                if not _alive(pid):
                    forget_process(pid)
            return self._files.collect()  # type: ignore[no-any-return,no-untyped-call]

    registry = CollectorRegistry()
    registry.register(LiveProcesses())
    start_http_server(port, addr=addr, registry=registry)
