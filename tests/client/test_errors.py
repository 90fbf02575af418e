"""Each error the server answers becomes its typed exception, carrying the server's code, message and field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from interp_client import (
    Client,
    ConflictError,
    InvalidRequestError,
    JobTooLargeError,
    NotFoundError,
    PayloadTooLargeError,
    RetryPolicy,
    UnavailableError,
    UnknownJobError,
    UnknownModelError,
    UnknownSaeError,
    models,
)

from tests.client.conftest import PATCHING
from tests.integration.conftest import Deployment, free_port, make_deployment

pytestmark = pytest.mark.integration


def test_400_from_the_server_names_the_field(client: Client) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        client.patching(**{**PATCHING, "answer": "two tokens"})
    error = raised.value
    assert (error.status, error.code, error.field) == (400, "not_single_token", "answer")
    assert "token" in error.message


def test_a_mistake_the_contract_catches_never_leaves_the_client(client: Client) -> None:
    before = client.page(limit=1).total
    with pytest.raises(InvalidRequestError) as raised:
        client.patching(**{**PATCHING, "targets": ["resid_nowhere"]})  # type: ignore[list-item]
    assert (raised.value.status, raised.value.code, raised.value.field) == (None, "invalid_request", "targets.0")
    with pytest.raises(InvalidRequestError) as unknown:
        client.patching(**{**PATCHING, "bogus": 1})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.field == "bogus"
    assert client.page(limit=1).total == before


def test_404s_by_code(client: Client) -> None:
    with pytest.raises(UnknownModelError) as model:
        client.patching(**{**PATCHING, "model": "nope"})
    assert (model.value.status, model.value.field) == (404, "model")
    assert model.value.message.endswith("tiny-gpt2, slow-gpt2")
    with pytest.raises(UnknownSaeError):
        client.sae_encode(model="tiny-gpt2", prompt="hi", sae="none")
    with pytest.raises(UnknownJobError) as job:
        client.job("does-not-exist")
    assert (job.value.code, job.value.field) == ("unknown_job", "job_id")
    with pytest.raises(NotFoundError):
        client.model("nope")


def test_413_and_422(client: Client) -> None:
    with pytest.raises(PayloadTooLargeError) as long:
        client.patching(**{**PATCHING, "clean_prompt": "x" * 200, "corrupted_prompt": "y" * 200})
    assert (long.value.status, long.value.code, long.value.field) == (413, "prompt_too_long", "clean_prompt")
    with pytest.raises(JobTooLargeError) as large:
        client.attribution(model="slow-gpt2", prompt="z" * 500, target={"token": "x"}, n_steps=512)
    assert (large.value.status, large.value.code, large.value.field) == (422, "job_too_large", "prompt")
    assert "bytes" in large.value.message


def test_conflict_for_a_key_reused_with_another_body(client: Client) -> None:
    first = client.submit(models.PatchingSpec(**PATCHING), idempotency_key="client-409")
    assert client.submit(models.PatchingSpec(**PATCHING), idempotency_key="client-409").id == first.id
    with pytest.raises(ConflictError) as raised:
        client.submit(models.PatchingSpec(**{**PATCHING, "targets": ["mlp_out"]}), idempotency_key="client-409")
    assert raised.value.code == "idempotency_key_reused"


@pytest.fixture(scope="module")
def no_redis_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API whose Redis is gone: every store-backed route answers 503."""
    dep: Deployment = make_deployment(f"redis://127.0.0.1:{free_port()}/0", tmp_path_factory.mktemp("dead"))
    try:
        yield dep.start_api()
    finally:
        for proc in dep.procs:
            dep.kill(proc)


def test_503_when_redis_is_down_after_retries(no_redis_api: str) -> None:
    # A well-formed key: only the (unreachable) Redis could say whether it is valid.
    key = "isk_000000000000_well-formed"
    with Client(no_redis_api, api_key=key, retry=RetryPolicy(attempts=3, base_delay_s=0.01)) as client:
        with pytest.raises(UnavailableError) as submit:
            client.patching(**PATCHING)
        assert (submit.value.status, submit.value.code) == (503, "unavailable")
        with pytest.raises(UnavailableError):
            client.job("abc")
        with pytest.raises(InvalidRequestError):  # the contract's checks need no server
            client.patching(**{**PATCHING, "targets": ["resid_nowhere"]})  # type: ignore[list-item]
