"""The results pages as files: served without auth, kept out of the OpenAPI document, shipped as package data."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from service.app import create_app
from service.controllers.ui import UI_DIR
from service.settings import ServiceSettings
from workers.activation_cache import MemoryActivationCache
from workers.records import MemoryJobStore

REPO_ROOT = Path(__file__).resolve().parents[3]
IMPORT = re.compile(r'^import .* from "(?P<path>[^"]+)";$', re.MULTILINE)


class NoQueue:
    def submit(self, job_id: str, kind: str, queue: str) -> None:
        raise AssertionError("no job is submitted here")

    def ping(self) -> None:
        return None


@pytest.fixture
def client() -> Iterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(ServiceSettings(auth="off"),
                     store=MemoryJobStore(), cache=MemoryActivationCache(max_bytes=1, ttl_s=1),
                     queue=NoQueue())
    with TestClient(app) as test_client:
        yield test_client


def test_pages_and_their_modules_are_served(client: TestClient) -> None:  # type: ignore[type-arg]
    for path, shell in (("/ui/", "submit.html"), ("/ui/jobs/0123abcd", "job.html")):
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.content == (UI_DIR / shell).read_bytes()
    script = client.get("/ui/static/kinds/patching.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.content == (UI_DIR / "static" / "kinds" / "patching.js").read_bytes()
    assert client.get("/ui/static/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/static/nope.js").status_code == 404


def test_pages_are_not_in_the_openapi_document(client: TestClient) -> None:  # type: ignore[type-arg]
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert "/v1/jobs" in paths
    assert [p for p in paths if p.startswith("/ui")] == []


def test_every_page_file_is_package_data_and_every_import_resolves() -> None:
    """An installed package carries what the checkout serves: each file under service/ui matches a glob of the
    root pyproject's package-data, and each module a page or module imports exists."""
    globs = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]["service"]
    service_dir = UI_DIR.parent
    files = [p for p in UI_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) >= 10
    packaged = {path for pattern in globs for path in service_dir.glob(pattern)}
    assert [str(p.relative_to(service_dir)) for p in files if p not in packaged] == []
    for shell in UI_DIR.glob("*.html"):
        for src in re.findall(r'src="/ui/static/([^"]+)"', shell.read_text(encoding="utf-8")):
            assert (UI_DIR / "static" / src).is_file(), f"{shell.name} loads missing {src}"
    for module in (UI_DIR / "static").rglob("*.js"):
        for target in IMPORT.findall(module.read_text(encoding="utf-8")):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports missing {target}"
