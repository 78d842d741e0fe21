"""Give every graph's event stream a new epoch: run after restoring or re-creating the database.

A restored database numbers events again from the backup's point, so a seq a client holds may now name another event.
With a new epoch, clients that resume are told to reload (`reset`) rather than trusting those numbers.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from graphs.models import Graph, new_epoch


class Command(BaseCommand):
    help = "Give every graph a new epoch (after a database restore), so that open pages reload instead of resuming."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        graphs = list(Graph.objects.select_for_update().only("pk", "epoch"))
        for graph in graphs:
            graph.epoch = new_epoch()
        Graph.objects.bulk_update(graphs, ["epoch"], batch_size=500)
        self.stdout.write(f"New epochs for {len(graphs)} graphs.")
