import time

from celery import shared_task
from django.conf import settings

from tradeassure.core import clock
from tradeassure.core.sweeps import SWEEP_TASK_OPTIONS, run_to_time_limit
from tradeassure.platform.models import Heartbeat
from tradeassure.platform.outbox import outbox_dispatch_due
from tradeassure.platform.reminders import reminders_send_due
from tradeassure.platform.webhooks import webhook_deliver_due

# How long one dispatch task keeps going through a backlog (well inside the 240 s soft limit);
# what is left is the next run's (beat, every 30 s, or the next kick).
OUTBOX_TASK_BUDGET_SECONDS = 60


@shared_task(name="tradeassure.dispatch_outbox", acks_late=True)
def dispatch_outbox() -> int:
    """Deliver due messages batch after batch until none is due or the time budget is spent."""
    batch = settings.TRADE_ASSURANCE["SWEEP_BATCH_SIZE"]
    deadline = time.monotonic() + OUTBOX_TASK_BUDGET_SECONDS
    total = 0
    while True:
        handled = outbox_dispatch_due(batch_size=batch)
        total += handled
        if handled < batch or time.monotonic() >= deadline:
            return total


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


@shared_task(name="tradeassure.send_reminders", **SWEEP_TASK_OPTIONS)
def send_reminders() -> int:
    """Remind the party who must act before each deadline that acts by itself (every source the
    apps declare; set-based, idempotent, never twice)."""
    return run_to_time_limit(reminders_send_due)
