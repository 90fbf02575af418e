"""The HTTP layer with in-process stores: the error envelope, field names, and job routes without a broker."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.settings import ServiceSettings
from workers.activation_cache import MemoryActivationCache
from workers.records import JobRecord, MemoryJobStore


class RecordingQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def submit(self, job_id: str, kind: str, queue: str) -> None:
        self.sent.append((job_id, kind, queue))

    def ping(self) -> None:
        return None


class BrokenStore(MemoryJobStore):
    def get(self, job_id: str) -> JobRecord | None:
        raise RuntimeError("secret internals: /etc/passwd")


PATCHING = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "ab", "corrupted_prompt": "cd",
            "answer": "a", "wrong_answer": "b"}


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def client(queue: RecordingQueue) -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(ServiceSettings(auth="off"),
                     store=MemoryJobStore(), cache=MemoryActivationCache(max_bytes=1, ttl_s=1),
                     queue=queue)
    with TestClient(app) as test_client:
        yield test_client


def test_submit_queues_by_model_group_and_lists(client: TestClient, queue: RecordingQueue) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/jobs", json=PATCHING)
    assert response.status_code == 202
    job = response.json()
    assert queue.sent == [(job["id"], "patching", "interp.models.tiny-gpt2")]
    assert job["status"] == "queued" and job["queue_position"] == 0
    assert client.get("/v1/jobs").json()["items"][0]["id"] == job["id"]
    cancelled = client.delete(f"/v1/jobs/{job['id']}").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None


def test_validation_errors_name_the_field_without_the_kind_prefix(client: TestClient) -> None:  # type: ignore[type-arg]
    error = client.post("/v1/jobs", json={**PATCHING, "metric": "accuracy"}).json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", "metric")
    error = client.post("/v1/jobs", json={**PATCHING, "kind": "nope"}).json()["error"]
    assert error["field"] == "kind"


def test_model_not_described_yet_is_503_for_tokenize(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/tokenize", json={"model": "tiny-gpt2", "prompt": "hi"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "model_not_ready"
    assert client.get("/v1/models/tiny-gpt2").json()["ready"] is False


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_unexpected_errors_are_500_with_a_generic_message() -> None:
    app = create_app(ServiceSettings(auth="off"),
                     store=BrokenStore(), cache=MemoryActivationCache(max_bytes=1, ttl_s=1),
                     queue=RecordingQueue())
    collect = _Collect()
    logging.getLogger("service.errors").addHandler(collect)
    try:
        with TestClient(app) as test_client:
            response = test_client.get("/v1/jobs/x")
    finally:
        logging.getLogger("service.errors").removeHandler(collect)
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal server error", "field": None}}
    # The log keeps the detail (with its traceback) that the client never sees.
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in collect.records)


class FlakyQueue(RecordingQueue):
    """A broker that is unreachable for the first submission only."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def submit(self, job_id: str, kind: str, queue: str) -> None:
        if self.down:
            self.down = False
            from kombu.exceptions import OperationalError

            raise OperationalError("connection refused")
        super().submit(job_id, kind, queue)


def test_a_retry_after_the_broker_refused_makes_a_new_job() -> None:
    store, flaky = MemoryJobStore(), FlakyQueue()
    app = create_app(ServiceSettings(auth="off"),
                     store=store, cache=MemoryActivationCache(max_bytes=1, ttl_s=1), queue=flaky)
    with TestClient(app) as client:
        first = client.post("/v1/jobs", json=PATCHING, headers={"Idempotency-Key": "k1"})
        assert first.status_code == 503 and first.json()["error"]["code"] == "unavailable"
        unqueued = store.page("default", offset=0, limit=10)[0]
        assert [r.status for r in unqueued] == ["failed"] and unqueued[0].error is not None
        assert unqueued[0].error.code == "unavailable"
        retry = client.post("/v1/jobs", json=PATCHING, headers={"Idempotency-Key": "k1"})
        assert retry.status_code == 202 and retry.json()["status"] == "queued"
        assert retry.json()["id"] != unqueued[0].id and [s[0] for s in flaky.sent] == [retry.json()["id"]]
        again = client.post("/v1/jobs", json=PATCHING, headers={"Idempotency-Key": "k1"})
        assert again.json()["id"] == retry.json()["id"]  # the key now names the queued job
