"""API keys and tenants over real HTTP, against ``interp api`` processes and a real Redis.

Every route the app has, except the open ones, refuses a request without a valid key, before it looks anything
up; one tenant cannot see, stream, cancel or list another's jobs, whose ids answer exactly as ids that never
existed; Idempotency-Keys are per tenant; revoked keys are refused at once; key management needs an admin key.
The API runs without a worker: jobs stay queued, which is all these tests need.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.routes import HTTPRoute

from service.app import create_app
from service.settings import ServiceSettings
from tests.integration.conftest import INTERP, REPO_ROOT, Deployment, make_deployment, serve_embedded
from workers.activation_cache import MemoryActivationCache
from workers.records import MemoryJobStore

pytestmark = pytest.mark.integration

PATCHING = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "ab", "corrupted_prompt": "cd",
            "answer": "a", "wrong_answer": "b"}
OPEN = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
"""The routes anyone may call, listed here on their own (not read from the app): a route the app opens by mistake
fails the test."""
BAD_KEYS: dict[str, dict[str, str]] = {
    "no header": {},
    "bearer without a key": {"Authorization": "Bearer"},
    "another scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "malformed": {"Authorization": "Bearer not-a-key"},
    "unknown": {"Authorization": "Bearer isk_0123456789ab_" + "x" * 43},
}


class _NoQueue:
    def submit(self, job_id: str, kind: str, queue: str) -> None:
        raise RuntimeError("route table only")

    def ping(self) -> None:
        return None


def protected_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the app's route table that is not open, path parameters filled in."""
    app = create_app(ServiceSettings(), store=MemoryJobStore(), cache=MemoryActivationCache(max_bytes=1, ttl_s=1),
                     queue=_NoQueue())
    routes = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith("/ui"):
            continue  # the results page's shells and static files: no tenant's data
        path = re.sub(r"\{(\w+):\w+\}", lambda m: f"some-{m.group(1)}", route.path)
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            if (method, path) not in OPEN:
                routes.append((method, path))
    return routes


@pytest.fixture(scope="module")
def dep(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = make_deployment(redis_url, tmp_path_factory.mktemp("auth"))
    try:
        deployment.start_api()
        yield deployment
    finally:
        deployment.stop()


def _as(dep: Deployment, key: str) -> httpx.Client:
    return httpx.Client(base_url=dep.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.request.method, response.request.url, response.text)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


def test_the_route_table_is_what_this_test_expects() -> None:
    """The derived list holds every API route (so a new one is covered by the next test on its own)."""
    routes = protected_routes()
    for expected in [("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/jobs/some-job_id"),
                     ("DELETE", "/v1/jobs/some-job_id"), ("GET", "/v1/jobs/some-job_id/events"),
                     ("GET", "/v1/models"), ("GET", "/v1/models/some-model_id"), ("POST", "/v1/tokenize"),
                     ("GET", "/v1/limits"), ("POST", "/v1/admin/keys"), ("GET", "/v1/admin/keys"),
                     ("DELETE", "/v1/admin/keys/some-key_id"), ("GET", "/schema/openapi.json")]:
        assert expected in routes


@pytest.mark.parametrize("bad", list(BAD_KEYS))
def test_every_protected_route_refuses_a_request_without_a_valid_key(dep: Deployment, bad: str) -> None:
    with httpx.Client(base_url=dep.api_url, headers=BAD_KEYS[bad], timeout=30) as http:
        for method, path in protected_routes():
            _refused(http.request(method, path, json={} if method == "POST" else None))
        for method, path in OPEN:
            assert http.request(method, path).status_code == 200
        assert http.get("/ui/").status_code == 200 and http.get("/ui/static/api.js").status_code == 200


def test_a_401_comes_before_any_lookup(dep: Deployment) -> None:
    """Without a valid key, a real job id and a made-up one get the same answer, byte for byte."""
    with dep.http(timeout=30) as http:
        real = http.post("/v1/jobs", json=PATCHING).json()["id"]
    made_up = "0" * 32
    for key in BAD_KEYS.values():
        for suffix in ("", "/events"):
            answers = [httpx.get(f"{dep.api_url}/v1/jobs/{job}{suffix}", headers=key, timeout=30)
                       for job in (real, made_up)]
            for answer in answers:
                _refused(answer)
            assert answers[0].content == answers[1].content
        cancels = [httpx.delete(f"{dep.api_url}/v1/jobs/{job}", headers=key, timeout=30) for job in (real, made_up)]
        assert cancels[0].content == cancels[1].content and cancels[0].status_code == 401


def test_another_tenants_job_is_a_404_like_one_that_never_existed(dep: Deployment) -> None:
    with _as(dep, dep.key("alice")) as alice, _as(dep, dep.key("bob")) as bob:
        job = bob.post("/v1/jobs", json=PATCHING).json()
        missing = "f" * 32

        def same(theirs: httpx.Response, nobodys: httpx.Response) -> None:
            assert theirs.status_code == nobodys.status_code == 404
            assert theirs.headers.get("content-type") == nobodys.headers.get("content-type")
            assert theirs.text.replace(job["id"], missing) == nobodys.text  # same shape, same words

        same(alice.get(f"/v1/jobs/{job['id']}"), alice.get(f"/v1/jobs/{missing}"))
        same(alice.get(f"/v1/jobs/{job['id']}", params={"wait": 1}), alice.get(f"/v1/jobs/{missing}"))
        same(alice.get(f"/v1/jobs/{job['id']}/events"), alice.get(f"/v1/jobs/{missing}/events"))
        same(alice.delete(f"/v1/jobs/{job['id']}"), alice.delete(f"/v1/jobs/{missing}"))
        same(alice.get(f"/v1/jobs/{job['id']}/artifacts/a.safetensors"),
             alice.get(f"/v1/jobs/{missing}/artifacts/a.safetensors"))
        assert bob.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"  # alice's cancel did nothing
        assert job["id"] not in [j["id"] for j in alice.get("/v1/jobs", params={"limit": 100}).json()["items"]]
        assert bob.delete(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"


def test_listing_shows_the_callers_jobs_only(dep: Deployment) -> None:
    with _as(dep, dep.key("carol")) as carol, _as(dep, dep.key("dave")) as dave:
        carols = [carol.post("/v1/jobs", json=PATCHING).json()["id"] for _ in range(3)]
        daves = [dave.post("/v1/jobs", json=PATCHING).json()["id"]]
        page = carol.get("/v1/jobs").json()
        assert [j["id"] for j in page["items"]] == carols[::-1] and page["total"] == 3
        page = dave.get("/v1/jobs").json()
        assert [j["id"] for j in page["items"]] == daves and page["total"] == 1
        # Two keys of one tenant see the same jobs.
        with _as(dep, dep.key("dave")) as dave_again:
            assert [j["id"] for j in dave_again.get("/v1/jobs").json()["items"]] == daves


def test_idempotency_keys_are_per_tenant(dep: Deployment) -> None:
    """B's Idempotency-Key used by A makes A a job of its own; each tenant's retries return its own job."""
    key = {"Idempotency-Key": "shared-key-1"}
    with _as(dep, dep.key("erin")) as erin, _as(dep, dep.key("frank")) as frank:
        bs = frank.post("/v1/jobs", json=PATCHING, headers=key)
        assert bs.status_code == 202
        as_ = erin.post("/v1/jobs", json=PATCHING, headers=key)
        assert as_.status_code == 202 and as_.json()["id"] != bs.json()["id"]
        assert erin.post("/v1/jobs", json=PATCHING, headers=key).json()["id"] == as_.json()["id"]
        assert frank.post("/v1/jobs", json=PATCHING, headers=key).json()["id"] == bs.json()["id"]
        # A different body under the key is refused only against the tenant's own job.
        other = {**PATCHING, "answer": "c"}
        assert erin.post("/v1/jobs", json=other, headers=key).json()["error"]["code"] == "idempotency_key_reused"
        fresh = frank.post("/v1/jobs", json=other, headers={"Idempotency-Key": "erin-only"})
        erin_first = erin.post("/v1/jobs", json=PATCHING, headers={"Idempotency-Key": "erin-only"})
        assert fresh.status_code == erin_first.status_code == 202


def test_admin_routes_need_an_admin_key(dep: Deployment) -> None:
    with _as(dep, dep.key("gina")) as plain, _as(dep, dep.key("ops", "admin")) as admin:
        for method, path in [("POST", "/v1/admin/keys"), ("GET", "/v1/admin/keys"), ("DELETE", "/v1/admin/keys/x")]:
            forbidden = plain.request(method, path, json={"tenant": "x"} if method == "POST" else None)
            assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
        made = admin.post("/v1/admin/keys", json={"tenant": "hank"})
        assert made.status_code == 201, made.text
        new = made.json()
        assert (new["tenant"], new["scope"]) == ("hank", "jobs") and new["key"].startswith(f"isk_{new['key_id']}_")
        with _as(dep, new["key"]) as hank:
            limits = hank.get("/v1/limits").json()
            assert (limits["tenant"], limits["key_id"], limits["scope"]) == ("hank", new["key_id"], "jobs")
            listed = admin.get("/v1/admin/keys").json()["items"]
            mine = [k for k in listed if k["key_id"] == new["key_id"]]
            assert mine == [{k: new[k] for k in ("key_id", "tenant", "scope", "created_at")}]
            assert "key" not in json.dumps(listed).replace('"key_id"', "")  # never a secret in a listing
            revoked = admin.delete(f"/v1/admin/keys/{new['key_id']}")
            assert revoked.status_code == 200 and revoked.json()["key_id"] == new["key_id"]
            _refused(hank.get("/v1/limits"))
        unknown = admin.delete(f"/v1/admin/keys/{new['key_id']}")
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_key")
        bad = admin.post("/v1/admin/keys", json={"tenant": "a:b"})
        assert (bad.status_code, bad.json()["error"]["field"]) == (400, "tenant")


def _interp(dep: Deployment, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*INTERP, *args], env={**dep.env, **env}, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, check=False)


def test_interp_keys_create_list_and_revoke(dep: Deployment) -> None:
    created = _interp(dep, "keys", "create", "--tenant", "ivan")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert re.fullmatch(r"isk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key) and "not shown again" in created.stderr
    key_id = key[4:16]
    with _as(dep, key) as ivan:
        assert ivan.get("/v1/limits").json()["tenant"] == "ivan"
        listed = json.loads(_interp(dep, "keys", "list", "--json").stdout)
        assert {"key_id": key_id, "tenant": "ivan", "scope": "jobs"}.items() <= next(
            k for k in listed if k["key_id"] == key_id).items()
        assert key not in _interp(dep, "keys", "list").stdout
        assert _interp(dep, "keys", "revoke", key_id).returncode == 0
        _refused(ivan.get("/v1/limits"))  # at once: nothing caches a key
    again = _interp(dep, "keys", "revoke", key_id)
    assert again.returncode != 0 and "no key" in again.stderr
    admin = _interp(dep, "keys", "create", "--tenant", "ops", "--scope", "admin").stdout.strip()
    with _as(dep, admin) as ops:
        assert ops.get("/v1/admin/keys").status_code == 200
    bad = _interp(dep, "keys", "create", "--tenant", "no:colons")
    assert bad.returncode != 0 and "tenant" in bad.stderr


def test_interp_api_refuses_to_start_without_a_pepper(dep: Deployment) -> None:
    env = {k: v for k, v in dep.env.items() if k != "INTERP_KEY_PEPPER"}
    done = subprocess.run([*INTERP, "api", "--port", "1"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0 and "INTERP_KEY_PEPPER" in done.stderr
    off = subprocess.run([*INTERP, "keys", "list"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60, check=False)
    assert off.returncode != 0 and "INTERP_KEY_PEPPER" in off.stderr


def _started_line(log: Path) -> str:
    lines = [line for line in log.read_text().splitlines() if "interp serve: embedded mode" in line]
    assert len(lines) == 1, log.read_text()[-2000:]
    return lines[0]


def test_embedded_mode_serves_without_keys_by_default_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with log.open("wb") as output, serve_embedded(tmp_path / "off", output=output) as url:
        assert httpx.get(f"{url}/v1/jobs", timeout=30).status_code == 200
        limits: dict[str, Any] = httpx.get(f"{url}/v1/limits", timeout=30).json()
        assert (limits["tenant"], limits["key_id"]) == ("default", None)
        assert httpx.get(f"{url}/v1/admin/keys", timeout=30).status_code == 403  # no key management without auth
    assert "auth off" in _started_line(log)


def test_embedded_mode_with_auth_required_logs_its_one_admin_key(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with log.open("wb") as output, serve_embedded(tmp_path / "on", output=output, INTERP_AUTH="required") as url:
        line = _started_line(log)
        found = re.search(r"admin key for tenant 'default': (isk_[0-9a-f]{12}_[A-Za-z0-9_-]{43})", line)
        assert found, line
        _refused(httpx.get(f"{url}/v1/jobs", timeout=30))
        headers = {"Authorization": f"Bearer {found.group(1)}"}
        made = httpx.post(f"{url}/v1/admin/keys", json={"tenant": "lab"}, headers=headers, timeout=30).json()
        lab = {"Authorization": f"Bearer {made['key']}"}
        assert httpx.post(f"{url}/v1/jobs?wait=30", json=PATCHING, headers=lab, timeout=60).json()["status"] in (
            "succeeded", "running", "queued")
        assert httpx.get(f"{url}/v1/jobs", headers=headers, timeout=30).json()["total"] == 0  # lab's, not default's
