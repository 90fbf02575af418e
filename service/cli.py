"""``interp``: ``serve`` (embedded: API and worker in one process), ``api`` and ``worker`` (production, Redis),
``openapi`` (regenerate openapi.yaml), ``keys`` (create, list and revoke API keys).

Configuration comes from the environment (see :class:`service.settings.ServiceSettings` and
:class:`workers.settings.WorkerSettings`): ``REDIS_URL`` switches to production mode, ``INTERP_REGISTRY`` names
the registry file. A variable or registry file that cannot be used stops the command with one line naming it.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from service.key_commands import add_key_commands, run_keys
from service.logs import configure_logging, logging_config, route_library_logs
from service.settings import ServiceSettings
from workers.core.errors import RegistryConfigError
from workers.settings import SettingsError, WorkerPool

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["main"]

log = logging.getLogger("interp")


def _require_webhook_secret(command: str, settings: ServiceSettings) -> None:
    """Production processes never run unsigned: without a secret, stop with one line naming the variable.

    A placeholder or malformed secret has already stopped every command when the settings were read.
    """
    if settings.workers.webhook_secret is None:
        raise SystemExit(
            f"interp {command}: INTERP_WEBHOOK_SECRET is not set; production mode needs a Standard Webhooks secret, "
            'e.g. INTERP_WEBHOOK_SECRET="whsec_$(openssl rand -base64 32)"'
        )


def _check_durability(command: str, settings: ServiceSettings) -> None:
    """Production keeps job records and queues in Redis: say loudly when a restart would lose them, or stop
    (``INTERP_REDIS_DURABILITY=require``, what the Helm chart sets)."""
    from workers.stores import redis_durability_problem

    url = settings.workers.redis_url
    problem = redis_durability_problem(url) if url else None
    if problem is None:
        return
    if settings.workers.redis_durability == "require":
        raise SystemExit(f"interp {command}: {problem} (INTERP_REDIS_DURABILITY=require)")
    log.warning("interp %s: %s; INTERP_REDIS_DURABILITY=require refuses to start like this", command, problem)


def _serve(args: argparse.Namespace, settings: ServiceSettings) -> None:
    import uvicorn

    from service.embedded import build_embedded

    settings = settings.model_copy(update={"host": args.host or settings.host, "port": args.port or settings.port,
                                           "auth": settings.auth or "off"})
    service = build_embedded(settings)
    auth = _embedded_auth(service.app, settings)
    route_library_logs()
    mode = "Redis" if settings.workers.broker_url else "in-memory broker, jobs do not survive a restart"
    hooks = ("webhooks signed with INTERP_WEBHOOK_SECRET" if settings.workers.webhook_secret is not None
             else "no INTERP_WEBHOOK_SECRET: webhooks off, a callback_url is refused")
    log.warning("interp serve: embedded mode (%s; %s; %s) on http://%s:%s", mode, hooks, auth, settings.host,
                settings.port)
    try:
        uvicorn.run(service.app, host=settings.host, port=settings.port, log_level="warning",
                    log_config=logging_config())
    finally:
        service.stop()


def _embedded_auth(app: Litestar, settings: ServiceSettings) -> str:
    """What the start-up line says of auth. Required without Redis, the keys live in this process only: an admin
    key for the default tenant is made now and logged once, the one way in."""
    from service.deps import provide_services

    if not settings.auth_required:
        return f"auth off (INTERP_AUTH=required to ask for API keys): every job is tenant {settings.default_tenant!r}"
    if settings.workers.redis_url:
        return "API keys required (interp keys create)"
    made = provide_services(app.state).keys.create(settings.default_tenant, "admin")
    return f"API keys required, kept in memory; admin key for tenant {made.info.tenant!r}: {made.key}"


def _api(args: argparse.Namespace, settings: ServiceSettings) -> None:
    import uvicorn

    if settings.workers.broker_url is None:
        raise SystemExit("interp api needs REDIS_URL (or BROKER_URL); for one process without Redis use interp serve")
    if settings.auth_required and settings.key_pepper is None:
        raise SystemExit("interp api: INTERP_AUTH=required (the default) needs INTERP_KEY_PEPPER, the secret API keys "
                         "are hashed with; or INTERP_AUTH=off to serve without keys")
    _require_webhook_secret("api", settings)
    _check_durability("api", settings)
    host, port = args.host or settings.host, args.port or settings.port
    # Each uvicorn worker process builds its app from the environment through the factory.
    uvicorn.run("service.app:app_from_env", factory=True, host=host, port=port, log_level="warning",
                workers=args.workers, log_config=logging_config())  # JSON lines in each uvicorn worker too


def _keep_logging(loglevel: int | str | None = None, **_: object) -> None:
    """Celery's ``setup_logging`` receiver: with one connected Celery configures no logging of its own (in the
    parent nor in prefork children), so the JSON lines stay; only ``--loglevel`` applies."""
    if loglevel:
        logging.getLogger().setLevel(loglevel)


def _worker(args: argparse.Namespace, settings: ServiceSettings) -> None:
    from workers.metrics_server import forget_process, serve_worker_metrics, use_multiprocess_dir

    metrics_port = settings.workers.worker_metrics_port
    pool = args.pool or settings.workers.worker_pool
    multiprocess = bool(metrics_port) and pool == "prefork"
    if multiprocess:
        use_multiprocess_dir()  # before prometheus_client is imported (below): children write per-process files

    from celery.signals import setup_logging, worker_process_init, worker_process_shutdown, worker_ready

    from workers.celery_app import make_celery
    from workers.runtime import WorkerRuntime
    from workers.settings import load_registry
    from workers.tasks import RuntimeHolder, register_tasks

    chosen = settings.workers.model_copy(update={"worker_pool": pool})
    concurrency = args.concurrency or chosen.concurrency
    worker_settings = chosen.model_copy(update={"worker_concurrency": concurrency})
    if worker_settings.broker_url is None:
        raise SystemExit("interp worker needs REDIS_URL (or BROKER_URL); for one process use interp serve")
    _require_webhook_secret("worker", settings)
    _check_durability("worker", settings)
    registry = load_registry(worker_settings)
    all_queues = {worker_settings.queue_for(m): m for m in registry.model_ids}
    webhooks = worker_settings.webhook_queue
    queues = args.queues.split(",") if args.queues else [*sorted(all_queues), webhooks]
    unknown = [q for q in queues if q not in all_queues and q != webhooks]
    if unknown:
        raise SystemExit(f"unknown queues {unknown}; this registry's queues: {sorted(all_queues)} and {webhooks}")
    models = [m for m in registry.model_ids if worker_settings.queue_for(m) in queues]
    app = make_celery(worker_settings)
    holder = RuntimeHolder(lambda: WorkerRuntime(worker_settings))
    register_tasks(app, worker_settings, holder)

    def warm(**_: object) -> None:
        holder.get().warm(models)

    if pool == "prefork":
        worker_process_init.connect(warm, weak=False)  # each child loads its own models, after the fork
    else:
        worker_ready.connect(warm, weak=False)
    setup_logging.connect(_keep_logging, weak=False)
    route_library_logs()
    if multiprocess:
        worker_process_shutdown.connect(lambda **_: forget_process(os.getpid()), weak=False)
    if metrics_port:
        try:
            serve_worker_metrics(metrics_port, multiprocess=multiprocess)
        except OSError as exc:
            raise SystemExit(f"interp worker: INTERP_WORKER_METRICS_PORT={metrics_port}: {exc.strerror}") from None
    log.info("worker starting", extra={"queues": queues, "pool": pool, "concurrency": concurrency,
                                       "metrics_port": metrics_port or None})
    # --quiet: no banner on stdout, whose lines would not be JSON.
    argv = ["--quiet", "worker", "-Q", ",".join(queues), "-c", str(concurrency), "-P", pool,
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", args.loglevel]
    app.worker_main(argv)


def _openapi(args: argparse.Namespace, _: ServiceSettings) -> None:
    from service.openapi import write_openapi

    path = write_openapi(Path(args.output))
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="interp", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="API and worker in one process (in-memory broker unless REDIS_URL)")
    api = sub.add_parser("api", help="the HTTP API only (needs REDIS_URL)")
    for p in (serve, api):
        p.add_argument("--host", default=None)
        p.add_argument("--port", type=int, default=None)
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    worker = sub.add_parser("worker", help="a Celery worker (needs REDIS_URL)")
    worker.add_argument("--queues", default="", help="comma-separated; default: every model group's queue")
    worker.add_argument("--concurrency", type=int, default=None,
                        help="default: INTERP_WORKER_CONCURRENCY, or 8 threads (1 process for prefork)")
    worker.add_argument("--pool", choices=get_args(WorkerPool), default=None,
                        help="default: INTERP_WORKER_POOL (threads, whose jobs share forwards)")
    worker.add_argument("--loglevel", default="INFO")
    spec = sub.add_parser("openapi", help="write the OpenAPI document")
    spec.add_argument("--output", default="openapi.yaml")
    add_key_commands(sub)
    args = parser.parse_args(argv)
    configure_logging()  # one JSON object per line on stderr, for every command
    try:
        settings = ServiceSettings.from_env()
        commands = {"serve": _serve, "api": _api, "worker": _worker, "openapi": _openapi, "keys": run_keys}
        commands[args.command](args, settings)
    except (SettingsError, RegistryConfigError) as exc:
        # A deployment mistake: the operator needs the variable or key at fault, not a traceback.
        raise SystemExit(f"interp {args.command}: {exc}") from None
