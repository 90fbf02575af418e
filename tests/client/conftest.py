"""A real deployment for the client's tests: Redis, one API process and one Celery worker process (tiny models).

Started once for the package. Before the worker starts, the API has no card for the models and accepts a job it
cannot check; the worker then fails it (a multi-token answer), so the tests have a failed job to read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from interp_client import Client

from tests.integration.conftest import Deployment, make_deployment, redis_url  # noqa: F401 - fixture

PATCHING = {
    "model": "tiny-gpt2",
    "clean_prompt": "When Mary and John went, John gave it to",
    "corrupted_prompt": "When Mary and John went, Mary gave it to",
    "answer": " ",
    "wrong_answer": "M",
    "targets": ["resid_pre", "head_out"],
}
SLOW = {
    "model": "slow-gpt2",
    "clean_prompt": "a" * 80,
    "corrupted_prompt": "b" * 80,
    "answer": "a",
    "wrong_answer": "b",
    "targets": ["resid_pre", "attn_out", "mlp_out"],
}
"""Seconds of work in four chunks: progress 0, 25, 50, 75, 100 %."""


@dataclass(frozen=True)
class Service:
    url: str
    failed_job_id: str
    deployment: Deployment

    @property
    def api_key(self) -> str:
        return self.deployment.api_key

    @property
    def cli_target(self) -> tuple[str, ...]:
        """``interp-client``'s options naming this service and its key."""
        return ("--url", self.url, "--api-key", self.api_key)


@pytest.fixture(scope="package")
def service(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:  # noqa: F811
    deployment = make_deployment(redis_url, tmp_path_factory.mktemp("client-deployment"))
    try:
        url = deployment.start_api()
        doomed = httpx.post(f"{url}/v1/jobs", json={"kind": "patching", **PATCHING, "answer": "two tokens"}, timeout=30,
                            headers=deployment.headers)
        assert doomed.status_code == 202 and doomed.json()["checked"] is False, doomed.text
        deployment.start_worker()
        yield Service(url, doomed.json()["id"], deployment)
    finally:
        deployment.stop()


@pytest.fixture
def client(service: Service) -> Iterator[Client]:
    with Client(service.url, api_key=service.api_key, timeout=60) as http:
        yield http
