"""Identity changes reach open desks at once: logout, a new password,
deactivation, deletion.

A desk socket keeps the user its handshake found; these handlers end the
consultant's presence through `services.consultant_leave`, which closes every
desk socket of theirs on every process (4401: no longer logged in; 4403: no
longer a consultant) and tells waiting callers now, not after the grace.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from . import services
from .events import publish_on_commit
from .models import Consultant, Presence

NOT_LOGGED_IN = 4401
NOT_CONSULTANT = 4403


def _leave(consultant: Consultant | None, code: int) -> None:
    if consultant is None:
        return
    publish_on_commit(
        services.consultant_leave(consultant_id=consultant.pk, code=code).events
    )


def _consultant_of(user) -> Consultant | None:
    if user is None or user.pk is None:
        return None
    return Consultant.objects.filter(user=user).first()


@receiver(user_logged_out)
def logged_out(sender, request, user, **kwargs):
    _leave(_consultant_of(user), NOT_LOGGED_IN)


@receiver(pre_save, sender=get_user_model())
def remember_identity(sender, instance, **kwargs):
    old = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    instance._identity_before = old


@receiver(post_save, sender=get_user_model())
def identity_changed(sender, instance, created, **kwargs):
    old = getattr(instance, "_identity_before", None)
    if created or old is None:
        return
    if old["password"] != instance.password or (
        old["is_active"] and not instance.is_active
    ):
        _leave(_consultant_of(instance), NOT_LOGGED_IN)


@receiver(pre_save, sender=Consultant)
def remember_active(sender, instance, **kwargs):
    old = sender.objects.filter(pk=instance.pk).values("is_active", "user_id").first()
    instance._identity_before = old


@receiver(post_save, sender=Consultant)
def consultant_changed(sender, instance, created, **kwargs):
    old = getattr(instance, "_identity_before", None)
    if created or old is None:
        return
    deactivated = old["is_active"] and not instance.is_active
    if deactivated or old["user_id"] != instance.user_id:
        # The admin's form saves every field: keep the presence the leave set.
        _leave(instance, NOT_CONSULTANT)
        instance.presence = Presence.OFFLINE


@receiver(pre_delete, sender=Consultant)
def consultant_deleted(sender, instance, **kwargs):
    # In the deletion's transaction: if the deletion fails, nothing is told.
    _leave(instance, NOT_CONSULTANT)
