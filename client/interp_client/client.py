"""The synchronous client: one typed method per job kind, jobs, models and tokenize.

    from interp_client import Client
    with Client("http://127.0.0.1:8000") as client:
        job = client.patching(model="gemma-3-270m", clean_prompt=..., corrupted_prompt=..., answer=" Mary",
                              wrong_answer=" John", targets=["resid_pre"])
        frame = job.result().to_pandas()
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack, cast

import httpx
from pydantic import BaseModel

from interp_client import fields
from interp_client import models as wire
from interp_client.jobs import Job
from interp_client.kinds import KINDS, JobRecord, JobSpec, Result, build_spec, job_record_adapter
from interp_client.transport import DEFAULT_URL, RetryPolicy, Settings, decode, json_body, raise_for_status

__all__ = ["Client"]

R = TypeVar("R", bound=BaseModel)


class Client:
    """A connection to interp-service; use it as a context manager, or ``close()`` it."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ):
        self.settings = Settings(base_url.rstrip("/"), api_key, timeout, retry or RetryPolicy())
        self._http = httpx.Client(
            base_url=self.settings.base_url, headers=self.settings.headers(), timeout=timeout
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- jobs of each kind ---------------------------------------------------------------------------------------

    def attribution(self, **spec: Unpack[fields.AttributionSpec]) -> Job[wire.AttributionResult]:
        """Which input tokens or components drove a target logit: gradient methods, DLA, logit lens."""
        return self._submit(build_spec(wire.AttributionSpec, spec), wire.AttributionResult)

    def patching(self, **spec: Unpack[fields.PatchingSpec]) -> Job[wire.PatchingResult]:
        """Activation patching of a clean and a corrupted prompt over layers, positions and heads."""
        return self._submit(build_spec(wire.PatchingSpec, spec), wire.PatchingResult)

    def sae_encode(self, **spec: Unpack[fields.SaeEncodeSpec]) -> Job[wire.SaeEncodeResult]:
        """A hook's activations as sparse-autoencoder features, per token, with reconstruction quality."""
        return self._submit(build_spec(wire.SaeEncodeSpec, spec), wire.SaeEncodeResult)

    def sae_features(self, **spec: Unpack[fields.SaeFeaturesSpec]) -> Job[wire.SaeFeaturesResult]:
        """One SAE feature: its activation over each prompt's tokens, and the tokens its direction promotes."""
        return self._submit(build_spec(wire.SaeFeaturesSpec, spec), wire.SaeFeaturesResult)

    def head_scores(self, **spec: Unpack[fields.HeadScoresSpec]) -> Job[wire.HeadScoresResult]:
        """Every head's previous-token, duplicate-token, induction (or custom pattern) score, layer × head."""
        return self._submit(build_spec(wire.HeadScoresSpec, spec), wire.HeadScoresResult)

    def steer(self, **spec: Unpack[fields.SteerSpec]) -> Job[wire.SteerResult]:
        """Generated text with and without an SAE feature's direction added (or the feature clamped)."""
        return self._submit(build_spec(wire.SteerSpec, spec), wire.SteerResult)

    def activations(self, **spec: Unpack[fields.ActivationsSpec]) -> Job[wire.ActivationsResult]:
        """Any hooks' activations for a prompt or a batch, sliced on the server (positions, heads, dims, top_k)."""
        return self._submit(build_spec(wire.ActivationsSpec, spec), wire.ActivationsResult)

    def attention(self, **spec: Unpack[fields.AttentionSpec]) -> Job[wire.AttentionResult]:
        """Attention patterns per layer and head (destination × source), with per-head summaries."""
        return self._submit(build_spec(wire.AttentionSpec, spec), wire.AttentionResult)

    def submit(self, spec: JobSpec, *, idempotency_key: str | None = None) -> Job[Result]:
        """Any job from its spec model; a retried submission with the same key returns the first job."""
        return self._submit(spec, cast("type[Result]", KINDS[spec.kind].result), idempotency_key)

    def _submit(self, spec: BaseModel, result_type: type[R], idempotency_key: str | None = None) -> Job[R]:
        key = idempotency_key or str(uuid.uuid4())  # one per logical submission, the same on every retry
        response = self._request("POST", "/v1/jobs", json=json_body(spec), headers={"Idempotency-Key": key})
        return Job(self, decode(response, job_record_adapter), result_type)

    # -- reading jobs --------------------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job[Result]:
        return self._handle(self._get_record(job_id))

    def page(self, *, offset: int = 0, limit: int = 20) -> wire.JobPage:
        """One page of your jobs, newest first."""
        response = self._request("GET", "/v1/jobs", params={"offset": offset, "limit": limit})
        return decode(response, wire.JobPage)

    def jobs(self, *, page_size: int = 20, limit: int | None = None) -> Iterator[Job[Result]]:
        """Your jobs, newest first, fetched a page at a time; at most ``limit`` of them."""
        seen: set[str] = set()  # jobs submitted meanwhile shift the pages: skip the ones already given
        offset = 0
        while limit is None or len(seen) < limit:
            page = self.page(offset=offset, limit=page_size)
            for record in page.items:
                if record.id not in seen and (limit is None or len(seen) < limit):
                    seen.add(record.id)
                    yield self._handle(record)
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return

    def _handle(self, record: JobRecord) -> Job[Result]:
        return Job(self, record, cast("type[Result]", KINDS[record.kind].result))

    def artifact(self, link: wire.ArtifactLink) -> bytes:
        """The file a result links to (``result.artifact``): safetensors bytes, which
        :func:`interp_client.arrays.read_safetensors` turns into arrays by tensor name."""
        return self._request("GET", link.url).content

    # -- models --------------------------------------------------------------------------------------------------

    def models(self) -> list[wire.ModelInfo]:
        return decode(self._request("GET", "/v1/models"), wire.ModelList).items

    def model(self, model_id: str) -> wire.ModelInfo:
        return decode(self._request("GET", f"/v1/models/{model_id}"), wire.ModelInfo)

    def tokenize(self, model: str, prompt: str, *, prepend_bos: bool = True) -> wire.TokenizeResponse:
        body = build_spec(wire.TokenizeRequest, {"model": model, "prompt": prompt, "prepend_bos": prepend_bos})
        return decode(self._request("POST", "/v1/tokenize", json=json_body(body)), wire.TokenizeResponse)

    # -- HTTP ----------------------------------------------------------------------------------------------------

    def _get_record(self, job_id: str, *, wait: float | None = None) -> JobRecord:
        params = {"wait": round(wait, 3)} if wait else None
        timeout = self.settings.wait_timeout(wait)
        response = self._request("GET", f"/v1/jobs/{job_id}", params=params, timeout=timeout)
        return decode(response, job_record_adapter)

    def _cancel(self, job_id: str) -> JobRecord:
        return decode(self._request("DELETE", f"/v1/jobs/{job_id}"), job_record_adapter)

    @contextmanager
    def _event_stream(self, job_id: str) -> Iterator[httpx.Response]:
        timeout = httpx.Timeout(self.settings.timeout, read=self.settings.events_read_timeout)
        headers = {"Accept": "text/event-stream"}
        with self._http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout, headers=headers) as response:
            if response.is_error:
                response.read()
                raise_for_status(response)
            yield response

    def _request(
        self, method: str, path: str, *, timeout: httpx.Timeout | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request, retried on connection errors and 503 as the policy says; error statuses are raised."""
        policy = self.settings.retry
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, timeout=timeout or self.settings.timeout, **kwargs)
            except httpx.TransportError as exc:
                time.sleep(policy.after_error(attempt, exc))
            else:
                delay = policy.after_response(attempt, response)
                if delay is None:
                    raise_for_status(response)
                    return response
                time.sleep(delay)
            attempt += 1
