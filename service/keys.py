"""API keys: random bearer tokens, each bound to a tenant and a scope, stored only as peppered hashes.

A key reads ``isk_<key id>_<secret>``. The prefix makes a leaked key recognisable (secret scanners, logs); the key
id is public (``interp keys list``, ``DELETE /v1/admin/keys/{key_id}``) and finds the key's record without a scan;
the secret is ``secrets.token_urlsafe(32)``. A store keeps HMAC-SHA256(pepper, key), never the key: a copy of Redis
yields no usable key without the pepper, which lives in the servers' settings only (``INTERP_KEY_PEPPER``).
Redis holds the records in production (one hash, shared by every API replica, so a revocation holds at once
everywhere); embedded mode without Redis keeps them in memory behind the same interface.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

import redis
from pydantic import BaseModel, ConfigDict

from workers.settings import SettingsError

if TYPE_CHECKING:
    from service.settings import ServiceSettings

__all__ = [
    "KEY_PREFIX",
    "TENANT_PATTERN",
    "ApiKey",
    "KeyStore",
    "MemoryKeyStore",
    "NewKey",
    "RedisKeyStore",
    "Scope",
    "build_key_store",
    "check_tenant",
]

Scope: TypeAlias = Literal["jobs", "admin"]
"""``jobs``: the tenant's own jobs and the read routes; ``admin``: that, and key management."""

KEY_PREFIX = "isk_"
_KEY_ID_HEX = 12
_KEY_ID = re.compile(rf"^[0-9a-f]{{{_KEY_ID_HEX}}}$")
_SECRET_BYTES = 32
_MAX_KEY_CHARS = 200

PEPPER_HINT = "a secret of at least 16 characters, the same on every API replica: python -c 'import secrets; " \
    "print(secrets.token_urlsafe(32))'"

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""Tenant names are parts of Redis keys (``owner:{tenant}``, ``idem:{tenant}:{key}``): no ``:``, so two tenants'
keys can never collide."""


def check_tenant(tenant: str) -> str:
    if not re.match(TENANT_PATTERN, tenant):
        raise ValueError(f"tenant {tenant!r} must match {TENANT_PATTERN} (letters, digits, '.', '_', '-')")
    return tenant


class ApiKey(BaseModel):
    """What is known of a key besides its secret: shown by listings, carried by an authenticated request."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    tenant: str
    scope: Scope
    created_at: float


class _StoredKey(ApiKey):
    digest: str
    """HMAC-SHA256(pepper, key), hex."""


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``key`` is its only copy, shown to the operator once."""

    key: str
    info: ApiKey


def _key_id_of(token: str) -> str | None:
    """The key id of a well-formed key, or ``None``: a malformed key is refused before any lookup."""
    if len(token) > _MAX_KEY_CHARS or not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX) :].partition("_")
    if not sep or not secret or not _KEY_ID.match(key_id):
        return None
    return key_id


class KeyStore(ABC):
    """Create, verify, list and revoke keys; subclasses only keep the records."""

    def __init__(self, pepper: bytes) -> None:
        if not pepper:
            raise ValueError("a key store needs a pepper")
        self._pepper = pepper

    def _digest(self, token: str) -> str:
        return hmac.new(self._pepper, token.encode(), hashlib.sha256).hexdigest()

    def create(self, tenant: str, scope: Scope = "jobs") -> NewKey:
        key_id = secrets.token_hex(_KEY_ID_HEX // 2)
        token = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
        stored = _StoredKey(key_id=key_id, tenant=check_tenant(tenant), scope=scope, created_at=time.time(),
                            digest=self._digest(token))
        self._put(stored)
        return NewKey(key=token, info=ApiKey.model_validate(stored.model_dump(exclude={"digest"})))

    def verify(self, token: str) -> ApiKey | None:
        """The key's record when ``token`` is a key this store made and has not revoked, else ``None``."""
        key_id = _key_id_of(token)
        stored = None if key_id is None else self._get(key_id)
        if stored is None or not hmac.compare_digest(stored.digest, self._digest(token)):
            return None
        return ApiKey.model_validate(stored.model_dump(exclude={"digest"}))

    def all_keys(self) -> list[ApiKey]:
        """Every live key, oldest first."""
        keys = [ApiKey.model_validate(s.model_dump(exclude={"digest"})) for s in self._all()]
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    def get(self, key_id: str) -> ApiKey | None:
        stored = self._get(key_id) if _KEY_ID.match(key_id) else None
        return None if stored is None else ApiKey.model_validate(stored.model_dump(exclude={"digest"}))

    def revoke(self, key_id: str) -> ApiKey | None:
        """Forget the key (every later request with it is a 401); the revoked key's record, or ``None``."""
        found = self.get(key_id)
        return found if found is not None and self._delete(key_id) else None

    @abstractmethod
    def _put(self, stored: _StoredKey) -> None: ...

    @abstractmethod
    def _get(self, key_id: str) -> _StoredKey | None: ...

    @abstractmethod
    def _all(self) -> list[_StoredKey]: ...

    @abstractmethod
    def _delete(self, key_id: str) -> bool: ...


class MemoryKeyStore(KeyStore):
    """Embedded mode: the keys live as long as the process. Without a pepper, a random one (keys die with it)."""

    def __init__(self, pepper: bytes | None = None) -> None:
        super().__init__(pepper or secrets.token_bytes(32))
        self._lock = threading.Lock()
        self._keys: dict[str, _StoredKey] = {}

    def _put(self, stored: _StoredKey) -> None:
        with self._lock:
            self._keys[stored.key_id] = stored

    def _get(self, key_id: str) -> _StoredKey | None:
        with self._lock:
            return self._keys.get(key_id)

    def _all(self) -> list[_StoredKey]:
        with self._lock:
            return list(self._keys.values())

    def _delete(self, key_id: str) -> bool:
        with self._lock:
            return self._keys.pop(key_id, None) is not None


class RedisKeyStore(KeyStore):
    """One Redis hash, ``{prefix}apikeys``: key id → the record as JSON (digest included, never the key)."""

    def __init__(self, client: redis.Redis, *, prefix: str, pepper: bytes) -> None:
        super().__init__(pepper)
        self._r = client
        self._name = f"{prefix}apikeys"

    def _put(self, stored: _StoredKey) -> None:
        self._r.hset(self._name, stored.key_id, stored.model_dump_json())

    def _get(self, key_id: str) -> _StoredKey | None:
        raw = self._r.hget(self._name, key_id)
        return None if raw is None else _StoredKey.model_validate_json(raw)

    def _all(self) -> list[_StoredKey]:
        raws: dict[bytes, bytes] = self._r.hgetall(self._name)  # type: ignore[assignment]
        return [_StoredKey.model_validate_json(raw) for raw in raws.values()]

    def _delete(self, key_id: str) -> bool:
        return bool(self._r.hdel(self._name, key_id))


def build_key_store(settings: ServiceSettings, client: redis.Redis | None) -> KeyStore:
    """Redis where the deployment has it, else memory. Keys in Redis outlive the process, so they need the pepper
    (the same on every replica); with auth off no key is ever checked and none is needed."""
    pepper = settings.key_pepper.get_secret_value().encode() if settings.key_pepper is not None else None
    if client is None:
        return MemoryKeyStore(pepper)
    if pepper is None:
        if settings.auth_required:
            raise SettingsError(f"INTERP_KEY_PEPPER: required with INTERP_AUTH=required ({PEPPER_HINT})")
        return MemoryKeyStore()
    return RedisKeyStore(client, prefix=settings.workers.key_prefix, pepper=pepper)
