"""The one writer: numbering, storing and announcing changes."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from comments import services
from comments.models import Event


@pytest.mark.django_db(transaction=True)
def test_events_are_numbered_per_graph_without_gaps(alice, shared_graph, make_graph):
    other = make_graph(alice, name="other")
    first = services.create_comment(user=alice, graph=shared_graph, body="one")
    services.create_comment(user=alice, graph=other, body="elsewhere")
    second = services.edit_comment(user=alice, comment=first.comment, body="one, edited")
    third = services.toggle_reaction(user=alice, comment=first.comment, reaction="+1")
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert list(Event.objects.filter(graph=shared_graph).values_list("seq", flat=True)) == [1, 2, 3]
    assert list(Event.objects.filter(graph=other).values_list("seq", flat=True)) == [1]
    shared_graph.refresh_from_db()
    assert shared_graph.last_seq == 3
    assert third.payload["reactions"] == {"+1": [alice.pk]}


@pytest.mark.django_db(transaction=True)
def test_a_failed_change_takes_no_number(alice, shared_graph):
    services.create_comment(user=alice, graph=shared_graph, body="one")
    with pytest.raises(ValidationError):
        services.create_comment(user=alice, graph=shared_graph, body="x", nodes=["NOT-A-NODE"])
    event = services.create_comment(user=alice, graph=shared_graph, body="two")
    assert event.seq == 2


@pytest.mark.django_db(transaction=True)
def test_an_outsider_cannot_comment(carol, shared_graph):
    with pytest.raises(PermissionDenied):
        services.create_comment(user=carol, graph=shared_graph, body="let me in")
    assert not Event.objects.exists()
