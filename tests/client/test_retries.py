"""A submission retried after a dropped connection makes one job, not two; an event stream cut mid-way resumes."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from interp_client import Client

from tests.client.conftest import PATCHING, SLOW, Service
from tests.client.proxy import BreakingProxy, Mode

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(service: Service, request: pytest.FixtureRequest) -> Iterator[BreakingProxy]:
    mode: Mode = request.param
    port = urlsplit(service.url).port
    assert port is not None
    breaking = BreakingProxy(port, mode)
    yield breaking
    breaking.close()


@pytest.mark.parametrize("proxy", ["drop_answer"], indirect=True)
def test_a_retried_submission_makes_one_job(proxy: BreakingProxy, client: Client, service: Service) -> None:
    before = client.page(limit=1).total
    with Client(proxy.url, api_key=service.api_key, timeout=60) as through:
        job = through.patching(**PATCHING)
        assert proxy.broken == 1 and proxy.connections == 2  # the first answer was lost; the retry got through
        assert job.result(timeout=120).targets.keys() == {"resid_pre", "head_out"}
    assert client.page(limit=1).total == before + 1
    assert next(client.jobs(limit=1)).id == job.id


@pytest.mark.parametrize("proxy", ["drop_answer"], indirect=True)
def test_without_the_key_the_same_drop_makes_two_jobs(proxy: BreakingProxy, client: Client, service: Service) -> None:
    """What the key prevents: the dropped attempt had created a job on the server."""
    before = client.page(limit=1).total
    body = {"kind": "patching", **PATCHING}
    with httpx.Client(base_url=proxy.url, timeout=60, headers=service.deployment.headers) as raw:
        with pytest.raises(httpx.RemoteProtocolError):
            raw.post("/v1/jobs", json=body)
        assert raw.post("/v1/jobs", json=body).status_code == 202
    assert client.page(limit=1).total == before + 2


@pytest.mark.parametrize("proxy", ["cut_after_event"], indirect=True)
def test_events_resume_after_a_cut_without_repeats(proxy: BreakingProxy, client: Client, service: Service) -> None:
    job = client.patching(**SLOW)
    with Client(proxy.url, api_key=service.api_key, timeout=60) as through:
        events = list(through.job(job.id).events())
    assert proxy.broken == 1
    assert [e.seq for e in events] == list(range(len(events)))
    assert events[0].status == "queued" and events[-1].status == "succeeded"
