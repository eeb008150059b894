"""The dashboard at ``/ui/``: one static page that reads the JSON API from the browser.

The page, its script and its style ship inside the package (no build step, no CDN: it
works offline) and hold no data: the script asks the API for everything (the farm's
state every second, the database's lists when files finished or every 10 s), with the
token the operator typed (sent as ``Authorization: Bearer``, as any client).
So the page itself answers without a token, but only to a loopback or allowed ``Host``
(DNS rebinding), and under a Content-Security-Policy that allows nothing but itself.
"""

from __future__ import annotations

from importlib import resources

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from .access import Access
from .errors import APIError
from .exchange import Exchange

#: name under /ui/ → (asset file, content type)
ASSETS = {
    "": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "app.css": ("app.css", "text/css; charset=utf-8"),
}

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def read_assets() -> dict[str, tuple[bytes, str]]:
    """The dashboard's files, read once from the package."""
    folder = resources.files(__package__) / "dashboard"
    return {
        name: (folder.joinpath(file).read_bytes(), kind) for name, (file, kind) in ASSETS.items()
    }


class DashboardResource(Resource):
    """``/ui/`` and its two assets; ``/ui`` redirects to ``/ui/``."""

    isLeaf = True

    def __init__(self, access: Access) -> None:
        super().__init__()
        self._access = access
        self._assets = read_assets()

    def render(self, request: Request) -> bytes | int:
        """Answer GET and HEAD with an asset (405 for other methods, 404 for other names)."""
        try:
            self._access.check_request(request, action=False, public=True)
        except APIError as error:
            return _error(request, error)
        method = bytes(request.method)
        if method not in (b"GET", b"HEAD"):
            allow = {"Allow": "GET, HEAD"}
            return _error(request, APIError(405, "the dashboard is read with GET", headers=allow))
        segments = [s.decode("utf-8", "replace") for s in request.postpath or []]
        if not segments:  # /ui without its slash: the page's relative links need one
            request.redirect(b"/ui/")
            return b""
        found = self._assets.get("/".join(segments)) if len(segments) == 1 else None
        if found is None:
            return _error(request, APIError(404, f"no such page: /ui/{'/'.join(segments)}"))
        body, kind = found
        request.setHeader(b"content-type", kind.encode())
        for name, value in HEADERS.items():
            request.setHeader(name.encode(), value.encode())
        return body


def _error(request: Request, error: APIError) -> int:
    """An error answered as the API answers its own: JSON, never HTML."""
    Exchange(request).send_error(error)
    return NOT_DONE_YET
