"""The Litestar application factory: controllers, the error mapper, OpenAPI, metrics and shared services."""

from __future__ import annotations

from celery import Celery
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, Schema, Server
from litestar.plugins.prometheus import PrometheusConfig

from service.catalog import Catalog
from service.controllers.health import HealthController
from service.controllers.jobs import JobController
from service.controllers.models import ModelController
from service.controllers.tokenize import TokenizeController
from service.controllers.ui import UiController, ui_static_router
from service.deps import Services, provide_services
from service.errors import exception_handlers
from service.job_body import JobSubmissionSchema
from service.job_events import job_events_for
from service.metrics import MetricsController, prometheus_config, register_cache_collector
from service.openapi_fixes import JobEventStreamSchema, complete_document
from service.queue import CeleryJobQueue, JobQueue
from service.readiness import Probe, Readiness
from service.settings import ServiceSettings
from workers.activation_cache import ActivationCache
from workers.celery_app import make_celery
from workers.core.registry import Registry
from workers.kinds.base import WireModel
from workers.records import JobStore
from workers.settings import load_registry
from workers.stores import API_REDIS_TIMEOUT_S, build_stores

__all__ = ["API_VERSION", "app_from_env", "create_app"]

API_VERSION = "1.0.0"

_DESCRIPTION = """Mechanistic interpretability as a service: attribution, activation patching, SAE features and
steering on served language models. Jobs are asynchronous: `POST /v1/jobs` answers 202 with a `Location`; poll it,
long-poll with `?wait=S`, stream `/v1/jobs/{id}/events`, or give a `callback_url`.

Errors are always `{"error": {"code", "message", "field"}}`. Malformed bodies and unknown fields are 400
(`invalid_request`, `field` names the first offending key); unknown model, SAE or job ids 404; bodies over the
configured limit (1 MiB by default) 413; prompts over the model's token limit 413 (`prompt_too_long`); jobs whose
estimated memory cannot fit a worker 422 (`job_too_large`, the message names the bytes); Redis or broker outages 503."""


def create_app(
    settings: ServiceSettings,
    *,
    store: JobStore | None = None,
    cache: ActivationCache | None = None,
    queue: JobQueue | None = None,
    celery: Celery | None = None,
    registry: Registry | None = None,
) -> Litestar:
    """Build the app; stores, queue and registry come from ``settings`` unless given (embedded mode shares them)."""
    registry = registry or load_registry(settings.workers)
    if store is None or cache is None:
        built_store, built_cache = build_stores(settings.workers, timeout_s=API_REDIS_TIMEOUT_S)
        store, cache = store or built_store, cache or built_cache
    if queue is None:
        queue = CeleryJobQueue(celery or make_celery(settings.workers))
    events = job_events_for(store, settings.workers.redis_url)
    readiness = Readiness([Probe("store", store.ping), Probe("broker", queue.ping)])
    services = Services(settings=settings, store=store, queue=queue, catalog=Catalog(registry, store), cache=cache,
                        events=events, readiness=readiness)
    register_cache_collector(cache)
    metrics: PrometheusConfig = prometheus_config()
    app = Litestar(
        route_handlers=[JobController, ModelController, TokenizeController, HealthController, MetricsController,
                        UiController, ui_static_router()],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=exception_handlers,
        plugins=[JobSubmissionSchema(), JobEventStreamSchema()],
        middleware=[metrics.middleware],
        state=State({"services": services}),
        lifespan=[events.lifespan],  # the one subscription to job wakes that long-polls and streams share
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="interp-service",
            version=API_VERSION,
            description=_DESCRIPTION,
            servers=[Server(url="/")],
            components=Components(),
            path="/schema",
        ),
        debug=False,
    )
    _mark_closed_schemas(app)
    complete_document(app.openapi_schema)
    return app


def _mark_closed_schemas(app: Litestar) -> None:
    """State ``additionalProperties: false`` for request models that refuse unknown fields.

    Litestar's generator does not derive it from pydantic's ``extra="forbid"``; the document must say it, since
    an unknown field is a 400.
    """
    closed = {model.__name__ for model in _subclasses(WireModel)}
    schemas = app.openapi_schema.components.schemas or {}
    for name, schema in schemas.items():
        if name in closed and isinstance(schema, Schema):
            schema.additional_properties = False


def _subclasses(cls: type[WireModel]) -> list[type[WireModel]]:
    direct: list[type[WireModel]] = cls.__subclasses__()
    return [sub for child in direct for sub in (child, *_subclasses(child))]


def app_from_env() -> Litestar:
    """The production app configured from the environment (``uvicorn --factory service.app:app_from_env``)."""
    return create_app(ServiceSettings.from_env())
