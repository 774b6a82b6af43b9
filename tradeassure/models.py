"""Shared building blocks every app writes to: domain events, the outbox, notifications, alerts."""

from django.conf import settings
from django.db import models


class DomainEvent(models.Model):
    """An append-only record of something that happened, written in the transaction that did it.

    It is the partner events feed and the source of webhooks; `audience` lists the organisations
    that may see it.
    """

    topic = models.CharField(max_length=80, db_index=True)
    subject_type = models.CharField(max_length=40)
    subject_id = models.BigIntegerField()
    audience = models.ManyToManyField("accounts.Organisation", related_name="+", blank=True)
    payload = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["subject_type", "subject_id"])]

    def __str__(self) -> str:
        return f"{self.topic} {self.subject_type}#{self.subject_id}"


class OutboxMessage(models.Model):
    """A side effect (email, webhook) to perform after commit, retried until it succeeds.

    Rows are written in the same transaction as the change that caused them, so a broker outage
    delays side effects but never loses one.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"

    channel = models.CharField(max_length=30)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    give_up_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="outbox_pending_due",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} #{self.pk} ({self.status})"


class Notification(models.Model):
    """An in-app notification: the bell in the navigation bar."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return self.title


class SystemAlert(models.Model):
    """Something staff must look at (a failed ledger check, an outbox message given up on)."""

    source = models.CharField(max_length=60)
    message = models.TextField()
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"[{self.source}] {self.message[:60]}"


class Heartbeat(models.Model):
    """The last time a worker ran the heartbeat task; /healthz shows it."""

    name = models.CharField(max_length=100, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"
