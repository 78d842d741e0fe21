"""A strict Content-Security-Policy for every response.

The pages load only our own scripts, styles and the vendored Cytoscape.js: no inline script, no inline style, no
CDN. Even if a comment body ever reached the DOM as markup, the browser would refuse to run what it carries.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"

BASE_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
}


def build_policy(host: str | None, secure: bool) -> str:
    """The header value; `host` (as the browser addressed us) adds its WebSocket origin to connect-src.

    CSP level 3 lets 'self' cover same-host WebSockets, but older browsers need the origin spelled out. Only the
    scheme of the page is added: an https page may not open ws:// anyway.
    """
    directives = {name: list(sources) for name, sources in BASE_POLICY.items()}
    if host:
        directives["connect-src"].append(f"{'wss' if secure else 'ws'}://{host}")
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    """Adds the policy unless a view set its own header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER not in response:
            try:
                host = request.get_host()
            except DisallowedHost:
                # The request is being refused anyway; the policy then allows no socket at all beyond 'self'.
                host = None
            response[HEADER] = build_policy(host, request.is_secure())
        return response
