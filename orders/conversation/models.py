"""Rows of the order conversation (imported by `orders.models`, so they belong to the orders app).

Messages are append-only: no service edits or deletes one. Staff may hide a message; who, when
and why stay on the row and the parties then see "hidden by staff" instead of its text."""

from django.conf import settings
from django.db import models
from django.urls import reverse


class OrderMessage(models.Model):
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The side the author spoke for ("buyer" or "supplier") and its organisation, kept on the row
    # so unread counts and receipts need no join through users.
    author_party = models.CharField(max_length=20)
    author_organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    body = models.TextField(blank=True)
    created_at = models.DateTimeField()
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    hidden_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["order", "id"]
        indexes = [
            models.Index(fields=["order", "id"], name="order_message_thread"),
            models.Index(fields=["author", "created_at"], name="order_message_rate"),
        ]
        permissions = [("hide_ordermessage", "Can hide an order message (with a reason)")]

    def __str__(self) -> str:
        return f"{self.order_id} {self.author_party}: {self.body[:40]}"

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None


class OrderMessageAttachment(models.Model):
    """A file attached to a message; stored privately (tradeassure.core.uploads) under a random
    name and served only to the order's parties and permitted staff."""

    message = models.ForeignKey(OrderMessage, on_delete=models.CASCADE, related_name="attachments")
    stored_name = models.CharField(max_length=255)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()

    class Meta:
        ordering = ["message", "id"]

    def __str__(self) -> str:
        return self.original_name

    def get_absolute_url(self) -> str:
        return reverse(
            "orders:message_attachment",
            args=[self.message.order_id, self.message_id, self.pk],
        )


class OrderReadReceipt(models.Model):
    """How far one organisation has read an order's thread (the last message id it has seen)."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="receipts")
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    last_read_message_id = models.BigIntegerField(default=0)
    read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "organisation"], name="order_read_receipt_one_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.organisation_id}: {self.last_read_message_id}"
