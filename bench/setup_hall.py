"""Make the lecture hall in the bench container: a public graph and BENCH_USERS viewers with API tokens.

Run by bench/run.py through `comments-manage shell -c` (Django set up, as the app user), after `load_demo`.
Idempotent: users and tokens made by an earlier run are reused. Prints one JSON line: graph id, the poster's token
(alice, the graph's owner) and the viewers' tokens.
"""

import json
import os
import secrets

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from graphs.models import Graph

User = get_user_model()
wanted = int(os.environ.get("BENCH_USERS", "50"))

alice = User.objects.get(username="alice")
demo = Graph.objects.filter(owner=alice, name__contains="TP53").order_by("pk").first()
hall = Graph.objects.filter(owner=alice, name="Bench hall").first()
if hall is None:
    hall = Graph.objects.create(
        owner=alice,
        name="Bench hall",
        description="The lecture hall of bench/: one public graph that every viewer watches.",
        public=True,
        elements=demo.elements,
        node_ids=demo.node_ids,
        edge_ids=demo.edge_ids,
    )

names = [f"bench{i:05d}" for i in range(wanted)]
existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
# "!" is Django's unusable password: the viewers sign in with their tokens only.
UNUSABLE = "!"
User.objects.bulk_create([User(username=name, password=UNUSABLE) for name in names if name not in existing])
users = {u.username: u for u in User.objects.filter(username__in=names)}
have = set(Token.objects.filter(user__username__in=names).values_list("user__username", flat=True))
Token.objects.bulk_create([Token(user=users[name], key=secrets.token_hex(20)) for name in names if name not in have])
keys = dict(Token.objects.filter(user__username__in=names).values_list("user__username", "key"))
poster, _ = Token.objects.get_or_create(user=alice)
print(json.dumps({"graph": hall.pk, "poster": poster.key, "tokens": [keys[name] for name in names]}))
