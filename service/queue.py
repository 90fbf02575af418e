"""How the API hands a job to the workers: by Celery task name, so the API process never imports torch."""

from __future__ import annotations

from typing import Protocol

from celery import Celery

from workers.celery_app import task_name

__all__ = ["CeleryJobQueue", "JobQueue"]


class JobQueue(Protocol):
    def submit(self, job_id: str, kind: str, queue: str) -> None:
        """Enqueue job ``job_id`` (its record already written) on ``queue``."""
        ...

    def ping(self) -> None:
        """Raise when the broker is unreachable."""
        ...


class CeleryJobQueue:
    """Production (Redis broker) and embedded (in-memory broker) alike: only the app's broker URL differs."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def submit(self, job_id: str, kind: str, queue: str) -> None:
        self._app.send_task(task_name(kind), args=[job_id], queue=queue, task_id=job_id)

    def ping(self) -> None:
        with self._app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
