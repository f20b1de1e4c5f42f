"""The web pages: the chat at `/`, the operator page at `/admin`, and their static files under
`/ui/`, served as they are (no build step). The pages are clients of the native API like any
other (the chat: /api/collections, /api/query/stream and /api/feedback), with the caller's API
key."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).with_name("static")

# Everything from this origin only: nothing is loaded from the network, no inline script can
# run, and model output is only ever inserted as text.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The chat page."""
    return _serve("index.html")


@router.get("/admin")
def admin_page() -> FileResponse:
    """The operator page: collections and documents, traces, feedback, evals, the cache."""
    return _serve("admin.html")


@router.get("/ui/{name}")
def asset(name: str) -> FileResponse:
    """A script or style sheet of the page; only the files shipped in `static/`."""
    return _serve(name)


def _serve(name: str) -> FileResponse:
    path = STATIC / name
    if name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        raise HTTPException(404, f"no UI file '{name}'")
    headers = {
        "Cache-Control": "no-cache",  # revalidated (ETag), so an upgrade shows at once
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": _CSP,
        "Referrer-Policy": "no-referrer",
    }
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=headers)
