from django.db import models


class FloorOrder(models.Model):
    """The floor's one model: an order row with the columns a list shows."""

    buyer_id = models.BigIntegerField(db_index=True)
    supplier_id = models.BigIntegerField()
    status = models.CharField(max_length=30, default="pending_confirmation")
    currency = models.CharField(max_length=3, default="USD")
    total = models.DecimalField(max_digits=14, decimal_places=2)
    summary = models.CharField(max_length=250, blank=True)
    terms = models.JSONField(default=dict)
    placed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        indexes = [models.Index(fields=["buyer_id", "-placed_at", "-id"])]

    def __str__(self) -> str:
        return f"#{self.pk}"
