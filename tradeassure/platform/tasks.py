from celery import shared_task
from django.conf import settings

from tradeassure.core import clock
from tradeassure.platform.models import Heartbeat
from tradeassure.platform.outbox import outbox_dispatch_due
from tradeassure.platform.webhooks import webhook_deliver_due


@shared_task(name="tradeassure.dispatch_outbox", acks_late=True)
def dispatch_outbox() -> int:
    return outbox_dispatch_due(batch_size=settings.TRADE_ASSURANCE["SWEEP_BATCH_SIZE"])


@shared_task(name="tradeassure.record_heartbeat", acks_late=True)
def record_heartbeat(name: str = "worker") -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": clock.now()})


@shared_task(name="tradeassure.deliver_webhooks", acks_late=True)
def deliver_webhooks() -> int:
    return webhook_deliver_due(batch_size=settings.TRADE_ASSURANCE["SWEEP_BATCH_SIZE"])


@shared_task(name="tradeassure.purge_idempotency_records", acks_late=True)
def purge_idempotency_records() -> int:
    from tradeassure.platform.api.idempotency import idempotency_purge_expired

    return idempotency_purge_expired()
