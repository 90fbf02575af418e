"""The bearer scheme as documented and as enforced in-process: the OpenAPI document says which operations need a
key, and the app built with auth off serves everyone as the default tenant, with no key management."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.auth import bearer_token
from service.keys import MemoryKeyStore
from service.openapi import openapi_document
from service.settings import ServiceSettings
from workers.activation_cache import MemoryActivationCache
from workers.records import MemoryJobStore

OPEN_OPERATIONS = {"/healthz", "/readyz", "/metrics"}


class _Queue:
    def submit(self, job_id: str, kind: str, queue: str) -> None:
        return None

    def ping(self) -> None:
        return None


def _app(settings: ServiceSettings, keys: MemoryKeyStore | None = None) -> Any:
    return create_app(settings, store=MemoryJobStore(), cache=MemoryActivationCache(max_bytes=1, ttl_s=1),
                      queue=_Queue(), keys=keys)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def test_the_document_names_the_bearer_scheme_on_every_protected_operation(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert list(schemes) == ["bearer"]
    assert (schemes["bearer"]["type"], schemes["bearer"]["scheme"]) == ("http", "bearer")
    operations = [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]
    assert len(operations) > 10
    for path, method, operation in operations:
        if path in OPEN_OPERATIONS:
            assert "security" not in operation and "401" not in operation["responses"], (method, path)
            continue
        assert operation["security"] == [{"bearer": []}], (method, path)
        assert "401" in operation["responses"] and "429" in operation["responses"], (method, path)
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert ("403" in operation["responses"]) is path.startswith("/v1/admin/"), (method, path)


def test_the_document_shows_the_limits(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {"max_tokens", "max_patches"} <= set(schemas["ModelInfo"]["required"])
    limits = document["paths"]["/v1/limits"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert limits == {"$ref": "#/components/schemas/Limits"}
    assert {"rate_limit", "rate_window_s", "max_active_jobs", "active_jobs"} <= set(schemas["Limits"]["properties"])


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer isk_a", "isk_a"), ("bearer isk_a", "isk_a"), ("  Bearer   isk_a ", "isk_a"), ("Bearer", None),
    ("Basic isk_a", None), ("Bearer isk_a extra", None), (None, None), ("", None),
])
def test_bearer_tokens_are_read_as_rfc_6750_has_them(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.fixture
def off() -> Iterator[TestClient[Any]]:
    with TestClient(_app(ServiceSettings(auth="off", default_tenant="lab"))) as client:
        yield client


def test_with_auth_off_everyone_is_the_default_tenant(off: TestClient[Any]) -> None:
    body = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "ab", "corrupted_prompt": "cd", "answer": "a",
            "wrong_answer": "b"}
    job = off.post("/v1/jobs", json=body).json()
    # A key, even a bogus one, changes nothing: no key is checked.
    listed = off.get("/v1/jobs", headers={"Authorization": "Bearer whatever"}).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    limits = off.get("/v1/limits").json()
    assert (limits["tenant"], limits["key_id"], limits["scope"]) == ("lab", None, "jobs")
    forbidden = off.post("/v1/admin/keys", json={"tenant": "x"})
    assert (forbidden.status_code, forbidden.json()["error"]["code"]) == (403, "forbidden")


def test_a_key_of_one_app_means_nothing_to_an_app_with_another_pepper() -> None:
    ours, theirs = MemoryKeyStore(b"a" * 16), MemoryKeyStore(b"b" * 16)
    key = ours.create("acme").key
    with TestClient(_app(ServiceSettings(), ours)) as mine, TestClient(_app(ServiceSettings(), theirs)) as other:
        assert mine.get("/v1/limits", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        refused = other.get("/v1/limits", headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
