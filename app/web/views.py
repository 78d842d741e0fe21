"""Server-rendered shells; the graph page fills itself from the API with the modules in static/web/js/."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from config.throttling import client_address, hit
from graphs.models import Graph


@login_required
def graph_list(request: HttpRequest) -> HttpResponse:
    """The graphs the signed-in user may see, most recently changed first."""
    graphs = Graph.objects.visible_to(request.user).select_related("owner").defer("elements")
    return render(request, "web/graph_list.html", {"graphs": graphs})


def graph_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The graph page. A graph the visitor may not see is a 404, as in the API: its existence is not revealed.

    Public graphs open for anonymous visitors too, read-only (the API refuses their writes anyway).
    """
    graph = get_object_or_404(Graph.objects.visible_to(request.user).select_related("owner"), pk=pk)
    return render(
        request,
        "web/graph_detail.html",
        {"graph": graph, "can_comment": graph.can_comment(request.user)},
    )


def throttle_logins(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Refuse sign-in attempts over the login rates with a 429 page and `Retry-After` (docs/protocol.md).

    Counted per address and username (one person's guesses at one account) and per address (guesses spread over
    many accounts); every POST counts, right or wrong, so that the form says nothing about the password. There is
    no limit per username alone: anyone could then lock a colleague out by failing on their name.
    """

    @wraps(view)
    def throttled(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            address = client_address(request)
            username = request.POST.get("username", "")
            waits = [hit("login.address", address), hit("login.address_username", f"{address} {username}")]
            wait = max((w for w in waits if w is not None), default=None)
            if wait is not None:
                response = render(request, "web/login_throttled.html", {"retry_after": wait}, status=429)
                response["Retry-After"] = str(wait)
                return response
        return view(request, *args, **kwargs)

    return throttled
