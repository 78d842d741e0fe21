"""Accounts that can no longer be used lose their open WebSockets, however the change was made.

A user deactivated (admin, shell, anonymisation) or deleted, or a token deleted: after commit, every worker's access
watcher closes that user's sockets with 4401 (live/access.py). The watcher's timed re-check covers an
announcement that Redis lost.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from comments import broadcast


@receiver(post_save, sender=get_user_model())
def user_saved(sender, instance, created: bool, **kwargs) -> None:
    if not created and not instance.is_active:
        broadcast.announce_account_revoked(instance.pk)


@receiver(post_delete, sender=get_user_model())
def user_deleted(sender, instance, **kwargs) -> None:
    broadcast.announce_account_revoked(instance.pk)


@receiver(post_delete, sender=Token)
def token_deleted(sender, instance, **kwargs) -> None:
    # Only the sockets opened with this token: the user's browser sessions are still valid.
    broadcast.announce_account_revoked(instance.user_id, token=instance.key)
