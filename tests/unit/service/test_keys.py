"""API keys behave the same in memory and in Redis: made once, stored as hashes only, verified, listed, revoked."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from pydantic import SecretStr

from service.keys import KEY_PREFIX, KeyStore, MemoryKeyStore, RedisKeyStore, build_key_store
from service.settings import ServiceSettings
from workers.settings import SettingsError, WorkerSettings

PEPPER = b"unit tests' pepper, 32 bytes!!!!"
URL = "redis://127.0.0.1:6379/12"


def _redis() -> redis.Redis:
    client = redis.Redis.from_url(URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    return client


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"unit-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(URL, socket_connect_timeout=0.5)
    try:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    except redis.RedisError:
        pass


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, prefix: str) -> KeyStore:
    if request.param == "memory":
        return MemoryKeyStore(PEPPER)
    return RedisKeyStore(_redis(), prefix=prefix, pepper=PEPPER)


def test_a_key_is_verified_and_names_its_tenant_and_scope(store: KeyStore) -> None:
    made = store.create("acme", "admin")
    assert made.key.startswith(f"{KEY_PREFIX}{made.info.key_id}_") and len(made.key) > 50
    found = store.verify(made.key)
    assert found == made.info
    assert (found.tenant, found.scope) == ("acme", "admin")
    assert store.create("acme").info.scope == "jobs"


@pytest.mark.parametrize("mangle", [
    lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # the secret changed: same key id, another digest
    lambda k: k.replace(KEY_PREFIX, "sk_"),
    lambda k: k[: len(KEY_PREFIX) + 12],  # no secret
    lambda k: KEY_PREFIX + "zz" + k[len(KEY_PREFIX) + 2 :],  # a key id that is not hex
    lambda k: k + "x" * 300,
    lambda k: "",
])
def test_anything_but_the_exact_key_is_refused(store: KeyStore, mangle: Callable[[str], str]) -> None:
    made = store.create("acme")
    assert store.verify(mangle(made.key)) is None


def test_revoked_keys_are_refused_and_unlisted(store: KeyStore) -> None:
    first, second = store.create("a"), store.create("b")
    assert [k.key_id for k in store.all_keys()] == [first.info.key_id, second.info.key_id]
    assert store.revoke(first.info.key_id) == first.info
    assert store.verify(first.key) is None and store.verify(second.key) == second.info
    assert [k.key_id for k in store.all_keys()] == [second.info.key_id]
    assert store.revoke(first.info.key_id) is None
    assert store.revoke("not-a-key-id") is None


def test_tenant_names_cannot_hold_a_colon(store: KeyStore) -> None:
    """Tenants are parts of Redis keys (``idem:{tenant}:{key}``): ``a:b`` could collide with tenant ``a``."""
    for bad in ("a:b", "", " acme", "x" * 65):
        with pytest.raises(ValueError, match="tenant"):
            store.create(bad)


def test_redis_holds_only_a_peppered_hash(prefix: str) -> None:
    client = _redis()
    made = RedisKeyStore(client, prefix=prefix, pepper=PEPPER).create("acme")
    stored = b"".join(client.hvals(f"{prefix}apikeys"))  # type: ignore[arg-type]
    secret = made.key.rsplit("_", 1)[-1].encode()
    assert made.key.encode() not in stored and secret not in stored
    assert hmac.new(PEPPER, made.key.encode(), hashlib.sha256).hexdigest().encode() in stored
    # Another pepper (another deployment, or a copy of Redis without the servers' secret) verifies nothing.
    assert RedisKeyStore(client, prefix=prefix, pepper=b"another pepper, 32 bytes long!!!").verify(made.key) is None
    assert RedisKeyStore(client, prefix=prefix, pepper=PEPPER).verify(made.key) == made.info


def test_keys_made_by_one_replica_hold_on_another(prefix: str) -> None:
    one = RedisKeyStore(_redis(), prefix=prefix, pepper=PEPPER)
    other = RedisKeyStore(_redis(), prefix=prefix, pepper=PEPPER)
    made = one.create("acme")
    assert other.verify(made.key) == made.info
    other.revoke(made.info.key_id)
    assert one.verify(made.key) is None


def test_redis_keys_need_the_pepper_unless_auth_is_off(prefix: str) -> None:
    client = _redis()
    workers = WorkerSettings(redis_url=URL, key_prefix=prefix)
    with pytest.raises(SettingsError, match="INTERP_KEY_PEPPER"):
        build_key_store(ServiceSettings(workers=workers), client)
    assert isinstance(build_key_store(ServiceSettings(workers=workers, auth="off"), client), MemoryKeyStore)
    peppered = ServiceSettings(workers=workers, key_pepper=SecretStr(PEPPER.decode()))
    assert isinstance(build_key_store(peppered, client), RedisKeyStore)
    assert isinstance(build_key_store(ServiceSettings(), None), MemoryKeyStore)  # embedded: memory, any pepper


def test_a_short_pepper_stops_the_process_without_echoing_it() -> None:
    with pytest.raises(SettingsError, match="INTERP_KEY_PEPPER") as refused:
        ServiceSettings.from_env({"INTERP_KEY_PEPPER": "hunter2"})
    assert "hunter2" not in str(refused.value)
    with pytest.raises(SettingsError, match="INTERP_AUTH"):
        ServiceSettings.from_env({"INTERP_AUTH": "maybe"})
