"""``interp keys create|list|revoke``: API keys from a shell, in the deployment's Redis (the API's own store).

``create`` prints the new key alone on stdout (``KEY=$(interp keys create --tenant acme)``), once: only its hash
is kept. The commands need ``REDIS_URL`` and the API's ``INTERP_KEY_PEPPER``; embedded mode without Redis keeps
its keys in memory, where only ``POST /v1/admin/keys`` on the running service can reach them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import redis

from service.keys import RedisKeyStore
from service.settings import ServiceSettings

__all__ = ["add_key_commands", "run_keys"]


def add_key_commands(sub: Any) -> None:
    """The ``keys`` subcommand and its own subcommands, on ``interp``'s subparsers."""
    keys = sub.add_parser("keys", help="create, list or revoke API keys (needs REDIS_URL and INTERP_KEY_PEPPER)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="a new key for a tenant, printed once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--scope", choices=("jobs", "admin"), default="jobs")
    listing = actions.add_parser("list", help="every live key (never their secrets)")
    listing.add_argument("--json", action="store_true")
    revoke = actions.add_parser("revoke", help="revoke a key: every later request with it is a 401")
    revoke.add_argument("key_id")


def _store(settings: ServiceSettings) -> RedisKeyStore:
    if not settings.workers.redis_url:
        raise SystemExit("interp keys needs REDIS_URL: the keys live in the deployment's Redis")
    if settings.key_pepper is None:
        raise SystemExit("interp keys needs INTERP_KEY_PEPPER, the same as the API's")
    client = redis.Redis.from_url(settings.workers.redis_url, socket_timeout=5, socket_connect_timeout=2)
    return RedisKeyStore(client, prefix=settings.workers.key_prefix,
                         pepper=settings.key_pepper.get_secret_value().encode())


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds")


def run_keys(args: argparse.Namespace, settings: ServiceSettings) -> None:
    store = _store(settings)
    if args.keys_command == "create":
        try:
            made = store.create(args.tenant, args.scope)
        except ValueError as exc:
            raise SystemExit(f"interp keys create: {exc}") from None
        print(made.key)
        print(f"key {made.info.key_id} for tenant {made.info.tenant} (scope {made.info.scope}); it is not shown again",
              file=sys.stderr)
    elif args.keys_command == "list":
        keys = store.all_keys()
        if args.json:
            print(json.dumps([key.model_dump() for key in keys]))
            return
        print(f"{'KEY_ID':<14}{'TENANT':<24}{'SCOPE':<7}CREATED")
        for key in keys:
            print(f"{key.key_id:<14}{key.tenant:<24}{key.scope:<7}{_when(key.created_at)}")
    else:
        revoked = store.revoke(args.key_id)
        if revoked is None:
            raise SystemExit(f"interp keys revoke: no key {args.key_id!r}")
        print(f"revoked {revoked.key_id} (tenant {revoked.tenant})", file=sys.stderr)
