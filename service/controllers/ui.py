"""The results pages: ``/ui/`` submits a job, ``/ui/jobs/{id}`` draws one. Static HTML, CSS and JS modules only.

The pages are shells: the browser reads the job from the API (``GET /v1/jobs/{id}``, its ``/events`` stream) with
the caller's key, so the HTML routes need no auth, render nothing server-side, and stay out of the OpenAPI document.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from litestar import Controller, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.static_files import create_static_files_router

__all__ = ["UI_DIR", "UiController", "ui_static_router"]

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
"""``service/ui/``: the two page shells, and ``static/`` (CSS, JS modules) shipped as package data."""

_REVALIDATE = CacheControlHeader(no_cache=True)
"""The browser asks again on every load, so an upgraded service shows its new pages at once."""


@cache
def _shell(name: str) -> bytes:
    """A page shell, read once (a few hundred bytes; the event loop never waits on the disk again)."""
    return (UI_DIR / name).read_bytes()


def _page(name: str) -> Response[bytes]:
    return Response(_shell(name), media_type=MediaType.HTML)


class UiController(Controller):
    path = "/ui"

    @get("/", sync_to_thread=False, include_in_schema=False, cache_control=_REVALIDATE)
    def submit_page(self) -> Response[bytes]:
        """A form that submits a job of any kind, then opens its page."""
        return _page("submit.html")

    @get("/jobs/{job_id:str}", sync_to_thread=False, include_in_schema=False, cache_control=_REVALIDATE)
    def job_page(self, job_id: str) -> Response[bytes]:
        """One job's page; the id is read from the address by the page's script."""
        return _page("job.html")


def ui_static_router() -> Router:
    """``/ui/static/…``: the pages' CSS and JS modules."""
    return create_static_files_router(
        path="/ui/static",
        directories=[UI_DIR / "static"],
        name="ui_static",
        include_in_schema=False,
        cache_control=_REVALIDATE,
    )
