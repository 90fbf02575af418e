"""Webhooks end to end: the real API and worker processes, Redis, and receivers on loopback in this process.

Two deployments. ``hooks`` delivers to the tests' loopback receivers (its allow list is the tests' 127.0.0.0/8, as
in every deployment of :func:`make_deployment`) with two retries: 5xx retried then delivered, 4xx and redirects
never retried, attempts bounded, all recorded on the job, signatures checked with the ``standardwebhooks``
library as a receiver would. ``strict`` has the production rules on its worker (no allow list) and two APIs: one
with no allow list and https only, which refuses internal callbacks with a 400 before any job exists; and one that
allows loopback, whose accepted ``http://localhost`` callback the worker then refuses at delivery time. That is what
the delivery-time check is for: it judges a fresh lookup of the name on its own rules, so a name whose answer has
changed since submission (DNS rebinding) gets no request. Here the rules differ between the two checks while
``localhost`` keeps its address; the unit tests (``tests/unit/workers/test_webhook_delivery.py``) change the
answer itself through a resolver hook, and show that the POST connects to the address checked, with no lookup of
its own. No test sends anything beyond loopback: refused callbacks are never connected to.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.integration.conftest import WEBHOOK_SECRET, Deployment, free_port, make_deployment, start_redis
from tests.webhook_receiver import receiving

pytestmark = pytest.mark.integration

JOB = {"kind": "sae_encode", "model": "tiny-gpt2", "prompt": "a webhook", "sae": "res-1", "top_k": 3}
MAX_RETRIES = 2
QUIET_S = 2.5
"""Long enough for a first retry to have come (backoff 1 s: the first retry waits 0–1 s) had there been one."""


@contextmanager
def own_redis(directory: Path) -> Iterator[str]:
    """A Redis of the deployment's own: every worker on a Redis consumes its ``interp.webhooks`` queue, so a
    deployment sharing one would hand its deliveries to another's worker (which finds no such job)."""
    proc, url = start_redis(directory)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    directory = tmp_path_factory.mktemp("hooks")
    with own_redis(directory) as redis_url:
        dep = make_deployment(redis_url, directory, INTERP_WEBHOOK_MAX_RETRIES=str(MAX_RETRIES), INTERP_AUTH="off")
        try:
            dep.start_worker(models=("tiny-gpt2",))
            with httpx.Client(base_url=dep.start_api(), timeout=60) as client:
                yield client
        finally:
            dep.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A worker and a https-only API with no allow list, and a second API that allows loopback over http."""
    directory = tmp_path_factory.mktemp("strict")
    with own_redis(directory) as redis_url:
        dep = make_deployment(redis_url, directory, INTERP_WEBHOOK_ALLOW_NETWORKS="", INTERP_AUTH="off")
        try:
            dep.start_worker(models=("tiny-gpt2",))  # http allowed, no network allowed
            dep.env["INTERP_WEBHOOK_ALLOW_NETWORKS"] = "127.0.0.0/8,::1/128"
            lenient = dep.start_api()  # the other deployments' test rules: loopback over http
            dep.env["INTERP_WEBHOOK_ALLOW_HTTP"] = ""  # unset: https only, and no allow list either
            dep.env["INTERP_WEBHOOK_ALLOW_NETWORKS"] = ""
            with httpx.Client(base_url=dep.start_api(), timeout=60) as api, \
                    httpx.Client(base_url=lenient, timeout=60) as loose:
                yield {"api": api, "lenient": loose, "deployment": dep}
        finally:
            dep.stop()


def _submit(client: httpx.Client, callback_url: str) -> dict[str, Any]:
    response = client.post("/v1/jobs", json={**JOB, "callback_url": callback_url}, params={"wait": 30})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    assert job["status"] == "succeeded"
    return job


def _settled(client: httpx.Client, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The job's delivery record once it stopped being pending (delivered, failed or refused)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        webhook = client.get(f"/v1/jobs/{job_id}").json()["webhook"]
        if webhook is not None and webhook["status"] != "pending":
            return dict(webhook)
        time.sleep(0.05)
    raise TimeoutError(f"the webhook of job {job_id} did not settle")


REFUSED = [
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",  # cloud metadata
    "https://127.0.0.1:6379/",  # a Redis on the API's host
    "https://10.0.0.1/hook",
    "https://192.168.0.10/hook",
    "https://172.20.0.10/hook",  # an EKS service address (also private)
    "https://100.64.0.1/hook",  # CGNAT
    "https://0.0.0.0/hook",
    "https://2130706433/hook",  # 127.0.0.1 in decimal
    "https://[::1]:8443/hook",
    "https://[fd00::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook",
    "https://localhost./hook",
    "https://no-such-host.invalid/hook",  # does not resolve
    "http://93.184.215.14/hook",  # public, but http
]


@pytest.mark.parametrize("url", REFUSED)
def test_internal_or_plain_http_callbacks_are_refused_at_submission(strict: dict[str, Any], url: str) -> None:
    api: httpx.Client = strict["api"]
    before = api.get("/v1/jobs").json()["total"]
    response = api.post("/v1/jobs", json={**JOB, "callback_url": url})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_callback_url", "callback_url")
    assert api.get("/v1/jobs").json()["total"] == before  # no job was made


def test_the_in_cluster_redis_is_refused(strict: dict[str, Any]) -> None:
    dep: Deployment = strict["deployment"]
    host_port = dep.env["REDIS_URL"].removeprefix("redis://").split("/", 1)[0]
    response = strict["api"].post("/v1/jobs", json={**JOB, "callback_url": f"https://{host_port}/"})
    assert response.status_code == 400
    assert response.json()["error"]["message"].endswith("127.0.0.1 is a loopback address")


def test_a_callback_the_delivery_time_check_refuses_gets_nothing_and_is_recorded(strict: dict[str, Any]) -> None:
    with receiving() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        job = _submit(strict["lenient"], f"http://localhost:{port}/hook")  # accepted: loopback allowed there
        webhook = _settled(strict["lenient"], job["id"])
        assert webhook == {
            "attempts": 1, "status": "refused", "last_status_code": None,
            "last_error": "callback_url must reach public addresses only: localhost resolves to a loopback address",
        }
        time.sleep(QUIET_S)
        assert receiver.calls == []  # never connected to, never retried
    assert strict["api"].get(f"/v1/jobs/{job['id']}").json()["webhook"]["attempts"] == 1


def test_5xx_is_retried_then_delivered_with_verifiable_signatures(hooks: httpx.Client) -> None:
    with receiving([503, 502, 200]) as receiver:
        job = _submit(hooks, receiver.url + "/hook")
        calls = receiver.wait_for(3)
        webhook = _settled(hooks, job["id"])
    assert webhook == {"attempts": 3, "status": "delivered", "last_status_code": 200, "last_error": None}
    assert len(calls) == 3
    verifier = Webhook(WEBHOOK_SECRET)
    payloads = [verifier.verify(call.body, call.headers) for call in calls]  # every attempt is signed
    assert {call.headers["webhook-id"] for call in calls} == {job["id"]}  # one id: receivers drop duplicates
    assert len({call.body for call in calls}) == 1
    assert payloads[-1]["id"] == job["id"] and payloads[-1]["status"] == "succeeded"
    assert payloads[-1]["result"]["prompts"][0]["tokens"] == job["result"]["prompts"][0]["tokens"]
    assert set(payloads[-1]) >= {"id", "kind", "model", "status", "result", "created_at", "finished_at"}
    assert not set(payloads[-1]) & {"spec", "webhook", "queue", "deliveries"}
    assert calls[-1].at - calls[0].at < 1 + 2 + 1  # backoff 1 s, full jitter: at most 1 s, then 2 s (+ slack)

    # A receiver refuses a delivery replayed later: the timestamp is signed and must be within five minutes.
    last = calls[-1]
    old = datetime.now(UTC) - timedelta(minutes=10)
    replayed = {**last.headers, "webhook-timestamp": str(int(old.timestamp()))}
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(last.body, replayed)
    resigned = {**replayed, "webhook-signature": verifier.sign(job["id"], old, last.body.decode())}
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(last.body, resigned)  # even correctly signed, an old message is refused
    forged = {**last.headers, "webhook-timestamp": str(int(last.headers["webhook-timestamp"]) + 60)}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verifier.verify(last.body, forged)  # a newer timestamp, within the window, on the old signature


def test_4xx_is_not_retried(hooks: httpx.Client) -> None:
    with receiving([410]) as receiver:
        job = _submit(hooks, receiver.url + "/hook")
        webhook = _settled(hooks, job["id"])
        time.sleep(QUIET_S)
        assert len(receiver.calls) == 1
    assert webhook == {"attempts": 1, "status": "failed", "last_status_code": 410,
                       "last_error": "the receiver answered 410"}


def test_a_redirect_is_not_followed_nor_retried(hooks: httpx.Client) -> None:
    with receiving() as elsewhere, receiving([302]) as receiver:
        receiver.location = elsewhere.url + "/stolen"
        job = _submit(hooks, receiver.url + "/hook")
        webhook = _settled(hooks, job["id"])
        time.sleep(QUIET_S)
        assert len(receiver.calls) == 1
        assert elsewhere.calls == []  # the redirect's target received nothing
    assert webhook == {"attempts": 1, "status": "failed", "last_status_code": 302,
                       "last_error": "the receiver answered 302, a redirect; redirects are never followed"}


def test_attempts_are_bounded_and_recorded(hooks: httpx.Client) -> None:
    with receiving([500]) as receiver:
        job = _submit(hooks, receiver.url + "/hook")
        webhook = _settled(hooks, job["id"])
        time.sleep(QUIET_S)
        assert len(receiver.calls) == 1 + MAX_RETRIES
    assert webhook == {"attempts": 1 + MAX_RETRIES, "status": "failed", "last_status_code": 500,
                       "last_error": "the receiver answered 500"}


def test_network_errors_are_retried_and_bounded(hooks: httpx.Client) -> None:
    job = _submit(hooks, f"http://127.0.0.1:{free_port()}/hook")  # nothing listens there
    webhook = _settled(hooks, job["id"])
    assert (webhook["attempts"], webhook["status"], webhook["last_status_code"]) == (1 + MAX_RETRIES, "failed", None)
    assert webhook["last_error"].startswith("ConnectError: ")
