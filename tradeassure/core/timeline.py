"""The abstract timeline row that orders and disputes write one of per state transition.

Abstract, so it needs no app of its own: each concrete subclass lives in (and migrates with)
the app of its aggregate.
"""

from django.conf import settings
from django.db import models


class TransitionEvent(models.Model):
    """One row per state transition of an aggregate (an order, a dispute): its timeline.

    Written by the service that makes the transition, in the same transaction; append-only.
    Subclasses add the foreign key to their aggregate and the `actor_party` choices.
    """

    action = models.CharField(max_length=40)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    from_status = models.CharField(max_length=30, blank=True)
    to_status = models.CharField(max_length=30)
    note = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        abstract = True
