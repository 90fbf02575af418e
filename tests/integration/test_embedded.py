"""``interp serve`` with no broker configured: API and worker in one process, in-memory broker, store and cache."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import serve_embedded

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_embedded(tmp_path_factory.mktemp("embedded")) as url:
        yield url


def test_embedded_serves_jobs_end_to_end(embedded: str) -> None:
    with httpx.Client(base_url=embedded, timeout=60) as client:
        assert client.get("/readyz").status_code == 200
        body = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "When Mary and John went, John gave",
                "corrupted_prompt": "When Mary and John went, Mary gave", "answer": " ", "wrong_answer": "M"}
        job = client.post("/v1/jobs", json=body, params={"wait": 60}).json()
        assert job["status"] == "succeeded", job
        grid = job["result"]["targets"]["resid_pre"]
        assert len(grid["values"]) == 2 and len(grid["values"][0]) == len(job["result"]["tokens"])
        encode = {"kind": "sae_encode", "model": "tiny-gpt2", "prompt": "cache me", "sae": "res-1", "top_k": 3}
        first = client.post("/v1/jobs", json=encode, params={"wait": 60}).json()
        second = client.post("/v1/jobs", json=encode, params={"wait": 60}).json()
        assert first["stats"]["forwards"] == 1 and second["stats"]["forwards"] == 0
        assert second["result"] == first["result"]
        events = [json.loads(line[5:]) for line in client.get(f"/v1/jobs/{second['id']}/events").text.splitlines()
                  if line.startswith("data:")]
        assert [e["status"] for e in events][-1] == "succeeded"
        assert client.get("/v1/jobs").json()["total"] == 3
