"""The Celery application: JSON only, late acks with redelivery when a worker dies, a queue per model group.

``make_celery`` registers no tasks, so the API process can send jobs by task name without importing torch;
workers call :func:`workers.tasks.register_tasks` on the app they run.
"""

from __future__ import annotations

from celery import Celery

from workers.settings import WorkerSettings

__all__ = ["make_celery", "task_name"]


def task_name(kind: str) -> str:
    """Stable task names: ``interp.patching``, ``interp.sae_encode``, …"""
    return f"interp.{kind}"


def _transport_options(settings: WorkerSettings) -> dict[str, float | bool]:
    """Redis: unacknowledged jobs come back after the visibility timeout (keep it above the hard time limits).
    RabbitMQ: a submission waits for the broker's confirm, so a 202 means the message is in the queue.
    In-memory (embedded): kombu polls the virtual queue, 1 s apart by default; poll often for low latency."""
    if settings.broker_url is None:
        return {"polling_interval": 0.01}
    if _is_amqp(settings):
        return {"confirm_publish": True}
    return {"visibility_timeout": settings.visibility_timeout_s}


def _is_amqp(settings: WorkerSettings) -> bool:
    return (settings.broker_url or "").startswith(("amqp://", "amqps://", "pyamqp://"))


def make_celery(settings: WorkerSettings) -> Celery:
    """A Celery app for ``settings.broker_url``, or kombu's in-memory transport in embedded mode."""
    app = Celery("interp", broker=settings.broker_url or "memory://", set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.concurrency,
        task_default_queue=settings.webhook_queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(settings),
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        broker_connection_timeout=2,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
        **_broker_queues(settings),
    )
    return app


def _broker_queues(settings: WorkerSettings) -> dict[str, object]:
    """RabbitMQ: every queue Celery declares is a quorum queue (replicated, its messages on disk), whose
    unacknowledged messages go back the moment a consumer's connection drops; quorum queues have no global QoS,
    which Celery then leaves alone. The Redis broker has neither: see workers/reaper.py."""
    if not _is_amqp(settings):
        return {}
    return {"task_create_missing_queue_type": "quorum", "worker_detect_quorum_queues": True}
