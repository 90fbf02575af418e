"""Embedded mode: the API and a Celery worker in one process, with kombu's in-memory broker.

Why in-memory rather than a filesystem or SQLite transport: the worker runs in the API's process, so the broker,
the job store and the activation cache can all be plain in-process objects, and the code path is still the
production one (``send_task`` by name → Celery consumer → the same ``interp.<kind>`` tasks). A cross-process
transport would only pay off with separate worker processes, which is what production mode (Redis) is for.
The price: queued jobs, records and cached activations live in memory and do **not** survive a restart.
The worker runs Celery's ``threads`` pool (``solo`` if ``INTERP_WORKER_POOL=solo``) in a thread, so concurrent jobs
of a model share forwards as in a production worker; soft time limits are still enforced between chunks (the task
polls its deadline), hard limits are not (no child process to kill).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from celery import Celery
from litestar import Litestar

from service.app import create_app
from service.queue import CeleryJobQueue
from service.settings import ServiceSettings
from workers.celery_app import make_celery
from workers.runtime import WorkerRuntime
from workers.settings import load_registry
from workers.stores import build_stores
from workers.tasks import RuntimeHolder, register_tasks

__all__ = ["EmbeddedService", "build_embedded"]

log = logging.getLogger(__name__)


@dataclass
class EmbeddedService:
    app: Litestar
    celery: Celery
    runtime: WorkerRuntime
    worker_thread: threading.Thread
    worker: object

    def stop(self) -> None:
        stop = getattr(self.worker, "stop", None)
        if stop is not None:
            stop(in_sighandler=False)
        self.worker_thread.join(timeout=10)


def build_embedded(settings: ServiceSettings, *, warm: bool = True) -> EmbeddedService:
    """Start an in-process worker thread and build the API around the same broker, store and cache."""
    registry = load_registry(settings.workers)
    store, cache = build_stores(settings.workers)
    runtime = WorkerRuntime(settings.workers, store=store, cache=cache, registry=registry)
    celery = make_celery(settings.workers)
    register_tasks(celery, settings.workers, RuntimeHolder(lambda: runtime))
    queues = sorted({settings.workers.queue_for(m) for m in registry.model_ids} | {settings.workers.webhook_queue})
    worker = celery.WorkController(
        pool_cls="solo" if settings.workers.worker_pool == "solo" else "threads",
        concurrency=1 if settings.workers.worker_pool == "solo" else settings.workers.concurrency,
        queues=queues,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="WARNING",
    )
    if warm:
        # Before the API exists: its first request already sees every model's card and tokenizer, so a bad
        # request is refused at submission exactly as a worker would refuse it.
        runtime.warm(registry.model_ids, background=False)
    thread = threading.Thread(target=worker.start, name="interp-embedded-worker", daemon=True)
    thread.start()
    app = create_app(settings, store=store, cache=cache, queue=CeleryJobQueue(celery), celery=celery,
                     registry=registry)
    return EmbeddedService(app=app, celery=celery, runtime=runtime, worker_thread=thread, worker=worker)
