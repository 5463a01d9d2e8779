"""Sign-in changes reach open sockets at once: logout, deactivation, a new password.

daphne keeps a socket up to a day; a socket is authenticated once, when it opens. So every
such change closes all of the user's sockets, on every process, with CLOSE_REAUTHENTICATE:
the page reconnects at once, and the handshake checks the session again (a session that
is still valid comes back; an ended one gets 4401).
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model, user_logged_out
from django.db import transaction
from django.db.models.signals import post_save, pre_save

AUTH_FIELDS = ("password", "is_active")


def user_group(user_pk) -> str:
    """Every socket of one user listens on this group."""
    return f"auth.user.{user_pk}"


def announce_auth_change(user_pk) -> None:
    """Close every open socket of the user, on every server process."""
    async_to_sync(get_channel_layer().group_send)(user_group(user_pk), {"type": "auth.changed"})


def on_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        # Django ends the session only after this signal: end it first, or a socket that
        # reconnects at once would find it still valid.
        request.session.flush()
        transaction.on_commit(lambda: announce_auth_change(user.pk))


def remember_auth_fields(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """Note whether this save changes the password or deactivates the user."""
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(AUTH_FIELDS):
        return  # e.g. login's last_login: no query
    before = sender.objects.filter(pk=instance.pk).values(*AUTH_FIELDS).first()
    after = {name: getattr(instance, name) for name in AUTH_FIELDS}
    instance._auth_changed = before is not None and before != after


def on_user_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if not raw and not created and getattr(instance, "_auth_changed", False):
        instance._auth_changed = False
        transaction.on_commit(lambda: announce_auth_change(instance.pk))


def connect() -> None:
    User = get_user_model()
    user_logged_out.connect(on_logout, dispatch_uid="conversations.on_logout")
    pre_save.connect(remember_auth_fields, sender=User, dispatch_uid="conversations.auth_pre")
    post_save.connect(on_user_saved, sender=User, dispatch_uid="conversations.auth_post")
