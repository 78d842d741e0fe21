"""Query parameters and credential headers are client text too: checked once, before anything reads them."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from config import inputs

# The headers whose values reach the database: the token and the session key are looked up there.
CHECKED_HEADERS = {"HTTP_AUTHORIZATION": "Authorization", "HTTP_COOKIE": "Cookie"}


def header_problem(request: HttpRequest) -> tuple[str, str] | None:
    """The first (header, problem) of the credentials' headers, else None (Apache refuses most of these itself)."""
    for key, name in CHECKED_HEADERS.items():
        problem = inputs.text_problem(request.META.get(key, ""))
        if problem:
            return name, problem
    return None


def query_problem(request: HttpRequest) -> tuple[str, str] | None:
    """The first (parameter, problem) of the query string that text_problem refuses, else None.

    Django decodes the query string with errors="replace", so a lone surrogate cannot arrive this way; a `%00` does,
    and a NUL reaching a filter (`?node=`, `?q=`, the admin's search) was a 500 from PostgreSQL.
    """
    for name, values in request.GET.lists():
        problem = inputs.text_problem(name)
        if problem:
            return "query", f"A parameter name {problem[0].lower()}{problem[1:]}"
        for value in values:
            problem = inputs.text_problem(value)
            if problem:
                return name, problem
    return None


class QueryTextMiddleware:
    """A 400 for a query parameter (or a credential header) that cannot be stored: JSON in the API's error shape under /api/, text elsewhere.

    A middleware rather than a hook of the API's views: it covers every view at once (the pages and the admin
    included), and runs before authentication, which would otherwise be the first to look at the request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = header_problem(request) or query_problem(request)
        if found is None:
            return self.get_response(request)
        name, problem = found
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"detail": f"{name}: {problem}", "code": "invalid", "errors": {name: [problem]}}, status=400
            )
        return HttpResponseBadRequest(f"Bad request: {name}: {problem}\n", content_type="text/plain; charset=utf-8")
