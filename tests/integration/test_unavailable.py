"""Redis unreachable: health stays 200, readiness and every store-backed route answer 503 with a clear body."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import Deployment, free_port, make_deployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def no_redis_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    dep: Deployment = make_deployment(dead, tmp_path_factory.mktemp("dead"))
    try:
        yield dep.start_api()
    finally:
        for proc in dep.procs:
            dep.kill(proc)


UNCHECKED_KEY = {"Authorization": "Bearer isk_000000000000_well-formed"}
"""A key of the right form: only Redis can say whether it is valid."""


def test_health_200_readiness_and_routes_503(no_redis_api: str) -> None:
    with httpx.Client(base_url=no_redis_api, timeout=30, headers=UNCHECKED_KEY) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["store"].startswith("unreachable")
        body = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "ab", "corrupted_prompt": "cd",
                "answer": "a", "wrong_answer": "b"}
        for response in (client.post("/v1/jobs", json=body), client.get("/v1/jobs/abc"), client.get("/v1/jobs"),
                         client.get("/v1/models/tiny-gpt2")):
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "unavailable"
        # The key is checked before the body, and checking it needs Redis; no key at all needs no lookup.
        assert client.post("/v1/jobs", json={**body, "bogus": 1}).status_code == 503
        refused = httpx.get(f"{no_redis_api}/v1/jobs", timeout=30)
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthorized")
