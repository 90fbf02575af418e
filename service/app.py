"""The Litestar application factory: controllers, the error mapper, OpenAPI, metrics and shared services."""

from __future__ import annotations

import redis
from celery import Celery
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, Schema, Server
from litestar.plugins.prometheus import PrometheusConfig
from litestar.plugins.pydantic import PydanticPlugin

from service.auth import BEARER, BEARER_SCHEME, SECURITY, ApiKeyMiddleware, provide_principal
from service.catalog import Catalog
from service.controllers.admin import AdminController
from service.controllers.health import HealthController
from service.controllers.jobs import JobController
from service.controllers.limits import LimitsController
from service.controllers.models import ModelController
from service.controllers.tokenize import TokenizeController
from service.controllers.ui import UiController, ui_static_router
from service.deps import Services, provide_services
from service.errors import exception_handlers
from service.job_body import JobSubmissionSchema
from service.job_events import job_events_for
from service.json_body import StrictJsonRequest
from service.keys import KeyStore, build_key_store
from service.limits import RateLimitMiddleware, build_limits
from service.metrics import MetricsController, prometheus_config, register_collectors
from service.openapi_fixes import ArtifactFileSchema, JobEventStreamSchema, complete_document
from service.queue import CeleryJobQueue, JobQueue
from service.readiness import Probe, Readiness
from service.reaper import Reaper
from service.request_id import RequestIdMiddleware, provide_request_id, send_request_id
from service.settings import ServiceSettings
from service.shutdown import drain_on_stop
from workers.activation_cache import ActivationCache
from workers.celery_app import make_celery
from workers.core.registry import Registry
from workers.kinds.base import WireModel
from workers.records import JobStore
from workers.settings import WorkerSettings, load_registry
from workers.stores import API_REDIS_TIMEOUT_S, build_stores

__all__ = ["API_VERSION", "app_from_env", "create_app"]

API_VERSION = "1.0.0"

_DESCRIPTION = """Mechanistic interpretability as a service: attribution, activation patching, SAE features and
steering on served language models. Jobs are asynchronous: `POST /v1/jobs` answers 202 with a `Location`; poll it,
long-poll with `?wait=S`, stream `/v1/jobs/{id}/events`, or give a `callback_url`.

Errors are always `{"error": {"code", "message", "field"}}`. Malformed bodies and unknown fields are 400
(`invalid_request`, `field` names the first offending key); unknown model, SAE or job ids 404; bodies over the
configured limit (1 MiB by default) 413; prompts over the model's token limit 413 (`prompt_too_long`); jobs whose
estimated memory cannot fit a worker 422 (`job_too_large`, the message names the bytes); Redis or broker outages 503.

Every route but `/healthz`, `/readyz` and `/metrics` needs an API key, `Authorization: Bearer isk_…` (401
`unauthorized` without a valid one; 403 `forbidden` for a `jobs` key on `/v1/admin/…`), unless the server runs with
`INTERP_AUTH=off` (embedded mode's default). A key belongs to a tenant: its jobs, their events and its
`Idempotency-Key`s are the tenant's own, and another tenant's job id is a 404 like one that never existed. Over the
rate limit (requests per key per window) or the tenant's limit of unfinished jobs: 429 (`rate_limited`,
`too_many_active_jobs`) with `Retry-After`; `GET /v1/limits` tells the caller both. Per model, prompts are limited
to `max_tokens` tokens and patching jobs to `max_patches` patches (422 `too_many_patches`), both on
`GET /v1/models/{id}`."""


def create_app(
    settings: ServiceSettings,
    *,
    store: JobStore | None = None,
    cache: ActivationCache | None = None,
    queue: JobQueue | None = None,
    celery: Celery | None = None,
    registry: Registry | None = None,
    keys: KeyStore | None = None,
) -> Litestar:
    """Build the app; stores, queue, registry and keys come from ``settings`` unless given (embedded mode shares
    them)."""
    registry = registry or load_registry(settings.workers)
    if store is None or cache is None:
        built_store, built_cache = build_stores(settings.workers, timeout_s=API_REDIS_TIMEOUT_S)
        store, cache = store or built_store, cache or built_cache
    if queue is None:
        celery = celery or make_celery(settings.workers)
        queue = CeleryJobQueue(celery)
    events = job_events_for(store, settings.workers.redis_url)
    readiness = Readiness([Probe("store", store.ping), Probe("broker", queue.ping)])
    client = _redis(settings.workers)
    keys = keys or build_key_store(settings, client)
    rate, active_jobs = build_limits(settings, client, store)
    services = Services(settings=settings, store=store, queue=queue, catalog=Catalog(registry, store), cache=cache,
                        events=events, readiness=readiness, keys=keys, active_jobs=active_jobs)
    queues = [*sorted({settings.workers.queue_for(m) for m in registry.model_ids}), settings.workers.webhook_queue]
    register_collectors(cache, celery, queues)  # read at scrape time: the cache's totals, the broker's queues
    metrics: PrometheusConfig = prometheus_config()
    # Keys are checked for every route but the open ones (service.auth.OPEN_PATHS); these are documented as such.
    protected = Router(path="/", security=SECURITY, route_handlers=[
        JobController, ModelController, TokenizeController, LimitsController, AdminController,
    ])
    authenticate = DefineMiddleware(ApiKeyMiddleware, keys=keys, required=settings.auth_required,
                                    default_tenant=settings.default_tenant)
    app = Litestar(
        route_handlers=[protected, HealthController, MetricsController, UiController, ui_static_router()],
        dependencies={"services": Provide(provide_services, sync_to_thread=False),
                      "principal": Provide(provide_principal, sync_to_thread=False),
                      "request_id": Provide(provide_request_id, sync_to_thread=False)},
        exception_handlers=exception_handlers,
        # Litestar validates pydantic bodies with strict=False unless told: the wire models are strict (WireModel).
        plugins=[PydanticPlugin(validate_strict=True), JobSubmissionSchema(), JobEventStreamSchema(),
                 ArtifactFileSchema()],
        middleware=[RequestIdMiddleware(), metrics.middleware, authenticate, RateLimitMiddleware(rate)],
        before_send=[send_request_id],  # every response, also those no route handler answers (404, 405)
        logging_config=None,  # the process's logging (JSON lines, service.logs) stays as interp set it
        state=State({"services": services}),
        # The one subscription to job wakes that long-polls and streams share, ended at once on a stop signal; the
        # reaper of jobs whose worker died.
        lifespan=[events.lifespan, drain_on_stop(events), Reaper(store, queue, settings.workers).lifespan],
        request_max_body_size=settings.max_body_bytes,
        request_class=StrictJsonRequest,  # every JSON body: application/json, UTF-8, no duplicated key, bounded depth
        openapi_config=OpenAPIConfig(
            title="interp-service",
            version=API_VERSION,
            description=_DESCRIPTION,
            servers=[Server(url="/")],
            components=Components(security_schemes={BEARER: BEARER_SCHEME}),
            path="/schema",
        ),
        debug=False,
    )
    _mark_closed_schemas(app)
    complete_document(app.openapi_schema)
    return app


def _redis(settings: WorkerSettings) -> redis.Redis | None:
    """The client of keys and limits, with the API's short timeouts; ``None`` in embedded mode without Redis."""
    if not settings.redis_url:
        return None
    return redis.Redis.from_url(settings.redis_url, socket_timeout=API_REDIS_TIMEOUT_S,
                                socket_connect_timeout=min(API_REDIS_TIMEOUT_S, 2.0))


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
