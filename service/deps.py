"""The objects controllers share, built once by :func:`service.app.create_app` and injected by Litestar."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State

from service.catalog import Catalog
from service.job_events import JobEvents
from service.keys import KeyStore
from service.limits import ActiveJobs
from service.queue import JobQueue
from service.readiness import Readiness
from service.settings import ServiceSettings
from workers.activation_cache import ActivationCache
from workers.records import JobStore

__all__ = ["Services", "provide_services"]


@dataclass(frozen=True)
class Services:
    settings: ServiceSettings
    store: JobStore
    queue: JobQueue
    catalog: Catalog
    cache: ActivationCache
    events: JobEvents
    readiness: Readiness
    keys: KeyStore
    active_jobs: ActiveJobs


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services
