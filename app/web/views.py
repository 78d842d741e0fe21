"""Server-rendered shells; the graph page fills itself from the API with the modules in static/web/js/."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

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
