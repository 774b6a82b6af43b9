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
    delays side effects but never loses one. A dispatcher claims a batch (status CLAIMED, its
    `claim` token, a lease), commits, delivers outside any row lock, then marks each row sent
    or due again; a claim whose lease expired (its worker died) is claimed again.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Being delivered"
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
    # The dispatcher run that holds the row (CLAIMED) and until when; past it, anyone may retry.
    claim = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # When the message was last handed to the mail server or handler: a row claimed again after
    # a crash with this set may have gone out already (it is sent again with the same
    # Message-ID, so the receiving side can drop the repeat); without it, it never went out.
    handed_over_at = models.DateTimeField(null=True, blank=True)
    # A batched email row (`payload["emails"]`, written by a set-based sweep): how many of its
    # emails, in order, are confirmed sent; a dispatcher that takes the row over goes on from there.
    emails_done = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="outbox_pending_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["lease_expires_at"],
                name="outbox_claim_lease",
                condition=models.Q(status="claimed"),
            ),
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


class ReminderSent(models.Model):
    """One reminder sent before a deadline that acts by itself (`tradeassure.platform.reminders`).

    The key is the deadline as it stood (its `due_at`) and how long before it (`lead_days`): a
    deadline that moves gets reminders for its new time; the unique constraint is what keeps
    two sweeps at once from sending the same reminder twice (`INSERT … ON CONFLICT DO NOTHING`).
    """

    subject_kind = models.CharField(max_length=40)  # "order", "dispute", "evidence_request", …
    subject_id = models.BigIntegerField()
    deadline = models.CharField(max_length=60)  # the source's deadline name ("payment", …)
    due_at = models.DateTimeField()
    lead_days = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject_kind", "subject_id", "deadline", "due_at", "lead_days"],
                name="reminder_sent_once",
            )
        ]
        indexes = [models.Index(fields=["due_at"], name="reminder_sent_due")]

    def __str__(self) -> str:
        return (
            f"{self.subject_kind}#{self.subject_id} {self.deadline} "
            f"{self.lead_days} d before {self.due_at:%Y-%m-%d %H:%M}"
        )


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


# --- Partner API: idempotency and webhooks (owner: API helper) ----------------------------------
class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an Idempotency-Key, replayed for 24 hours.

    The row is claimed (inserted, committed) before the request runs, so the unique constraint
    makes a concurrent request with the same key see it and get 409 instead of running twice.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        COMPLETED = "completed", "Completed"

    caller = models.CharField(max_length=64, help_text="'key:<api key id>' or 'user:<user id>'")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotency_unique_caller_key")
        ]

    def __str__(self) -> str:
        return f"{self.caller} {self.key} ({self.state})"


class WebhookEndpoint(models.Model):
    """A partner's URL that receives the domain events its organisation may see, signed."""

    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    topics = models.JSONField(
        default=list, blank=True, help_text="Event topics to send; empty means every topic."
    )
    secret = models.CharField(max_length=80)
    previous_secret = models.CharField(max_length=80, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organisation", "is_active"])]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event on its way to one endpoint; retried with backoff for up to 3 days."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERING = "delivering", "Delivering"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (gave up)"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(
        DomainEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    topic = models.CharField(max_length=80)
    payload = models.JSONField(default=dict)
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    give_up_at = models.DateTimeField()
    last_response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event"],
                condition=models.Q(event__isnull=False),
                name="webhook_delivery_once_per_event",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status__in=["pending", "delivering"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP request made for a delivery, with what the partner's server answered."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="webhook_attempt_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
