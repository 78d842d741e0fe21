"""`manage.py load_demo`: demo users, a group, a real TP53 network and a discussion of it.

What it makes (only what is missing; running it again changes nothing and prints the same lines):
- users alice and bob (the "p53 lab" group) and carol (an outsider who shares nothing with them);
- the group "p53 lab", owned by alice, with alice and bob;
- "TP53 network" (comments/demo/tp53_network.json: well-known human protein interactions around p53), owned by
  alice, private, shared with the group, with a few comments: on the graph, a node, an edge and a subgraph, a
  reply, reactions, a resolved thread and a mention of bob;
- "DNA damage checkpoint (draft)", alice's private graph, shared with nobody.

Passwords: new users get DEMO_PASSWORD from the environment. Without it, a random password is made, set on the
users created by this run and printed once; existing users keep theirs (a re-run never resets a password, so
nobody is locked out of a demo they already use). There is no fixed default password: a demo may well be reachable
by others.

Comments are written through `comments.services`, like every other comment: they are numbered events from the
start, so the page shows them and resuming clients get them.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from comments import services
from graphs.elements import parse_elements
from graphs.models import Graph, Group

NETWORK_FILE = Path(__file__).resolve().parents[2] / "demo" / "tp53_network.json"
GROUP_NAME = "p53 lab"
TP53_NAME = "TP53 network"
DRAFT_NAME = "DNA damage checkpoint (draft)"
DRAFT_ELEMENTS = {
    "nodes": [
        {"data": {"id": "ATM", "name": "ATM"}},
        {"data": {"id": "ATR", "name": "ATR"}},
        {"data": {"id": "CHEK1", "name": "CHEK1"}},
        {"data": {"id": "CHEK2", "name": "CHEK2"}},
        {"data": {"id": "CDC25A", "name": "CDC25A"}},
    ],
    "edges": [
        {"data": {"id": "d1", "source": "ATM", "target": "CHEK2", "interaction": "phosphorylates"}},
        {"data": {"id": "d2", "source": "ATR", "target": "CHEK1", "interaction": "phosphorylates"}},
        {"data": {"id": "d3", "source": "CHEK1", "target": "CDC25A", "interaction": "phosphorylates"}},
        {"data": {"id": "d4", "source": "CHEK2", "target": "CDC25A", "interaction": "phosphorylates"}},
    ],
}

User = get_user_model()


class Command(BaseCommand):
    help = (
        "Create the demo users alice, bob and carol, the group 'p53 lab', a TP53 network with comments and a private "
        "draft graph. Idempotent. New users get the password in DEMO_PASSWORD, else a random one printed once."
    )

    def handle(self, *args, **options) -> None:
        password = os.environ.get("DEMO_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        lines: list[str] = []
        with transaction.atomic():
            users = {}
            for username in ("alice", "bob", "carol"):
                users[username], created = self._user(username, password)
                lines.append(f"user {username}: {'created' if created else 'exists (password unchanged)'}")
            alice, bob = users["alice"], users["bob"]
            group = Group.objects.filter(name=GROUP_NAME, owner=alice).order_by("pk").first()
            created = group is None
            if created:
                group = Group.objects.create(name=GROUP_NAME, owner=alice)
                group.members.add(alice, bob)
            lines.append(f"group {GROUP_NAME!r}: {'created' if created else 'exists'}")

            document = json.loads(NETWORK_FILE.read_text(encoding="utf-8"))
            tp53, created = self._graph(alice, TP53_NAME, document, document["data"]["description"])
            if created:
                tp53.shared_with.add(group)
                self._discuss(tp53, alice, bob)
            lines.append(
                f"graph {TP53_NAME!r} (#{tp53.pk}, {len(tp53.node_ids)} nodes, {len(tp53.edge_ids)} edges, "
                f"shared with {GROUP_NAME!r}): {'created with comments' if created else 'exists'}"
            )
            draft, created = self._graph(
                alice, DRAFT_NAME, DRAFT_ELEMENTS, "CHK1 and CHK2 send CDC25A to degradation. Not shared yet."
            )
            lines.append(f"graph {DRAFT_NAME!r} (#{draft.pk}, private): {'created' if created else 'exists'}")
        for line in lines:
            self.stdout.write(line)
        if generated and any(line.endswith(": created") for line in lines if line.startswith("user ")):
            self.stdout.write(
                f"Password of the users created now: {password}\n"
                "(printed only this once; set DEMO_PASSWORD to choose it)"
            )

    @staticmethod
    def _user(username: str, password: str):
        user = User.objects.filter(username=username).first()
        if user is not None:
            return user, False
        return User.objects.create_user(username=username, password=password), True

    @staticmethod
    def _graph(owner, name: str, elements: dict, description: str):
        graph = Graph.objects.filter(owner=owner, name=name).order_by("pk").first()
        if graph is not None:
            return graph, False
        parsed = parse_elements(elements)
        graph = Graph.objects.create(
            owner=owner,
            name=name,
            description=description,
            public=False,
            elements=parsed.elements,
            node_ids=parsed.node_ids,
            edge_ids=parsed.edge_ids,
        )
        return graph, True

    @staticmethod
    def _discuss(graph: Graph, alice, bob) -> None:
        """A short discussion, written by the one writer like any other."""
        overview = services.create_comment(
            user=alice,
            graph=graph,
            body=(
                "Curated from the literature: the p53-MDM2 feedback loop, the DNA-damage kinases, and the targets "
                "for arrest and apoptosis. @bob could you check the edge directions?"
            ),
        ).comment
        services.create_comment(
            user=bob,
            graph=graph,
            parent=overview.pk,
            body="Directions look right. The acetylation edges (EP300, CREBBP, KAT5) could carry their lysines too.",
        )
        loop = services.create_comment(
            user=bob,
            graph=graph,
            nodes=["MDM2"],
            body=(
                "MDM2 is both a p53 target (e2) and its main E3 ligase (e1): the core negative feedback loop. "
                "Nutlin-3 breaks it by blocking the p53-binding pocket."
            ),
        ).comment
        serine = services.create_comment(
            user=alice,
            graph=graph,
            edges=["e11"],
            body="Ser15 is the first site phosphorylated after double-strand breaks; CHK2 adds Ser20 (e19).",
        ).comment
        apoptosis = services.create_comment(
            user=bob,
            graph=graph,
            nodes=["TP53", "BAX", "BBC3", "PMAIP1"],
            edges=["e36", "e37", "e38"],
            body="The apoptotic arm: PUMA (BBC3) and NOXA (PMAIP1) do most of the killing; BAX acts downstream of both.",
        ).comment
        services.toggle_reaction(user=alice, comment=apoptosis, reaction="+1")
        services.toggle_reaction(user=alice, comment=loop, reaction="eyes")
        services.toggle_reaction(user=bob, comment=overview, reaction="hooray")
        services.set_resolved(user=alice, comment=serine, resolved=True)
