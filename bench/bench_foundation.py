"""Foundation benchmarks: what the outbox and the page chrome cost over their floor."""

from datetime import timedelta

from bench.micro import Benchmark, get_many

MESSAGES = 200


def _outbox_with_due_emails() -> dict:
    from tradeassure.core import clock
    from tradeassure.platform.models import OutboxMessage

    OutboxMessage.objects.all().delete()
    now = clock.now()
    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            channel="email",
            payload={"to": f"b{n}@example.com", "subject": "Order confirmed", "body": "…"},
            next_attempt_at=now,
            give_up_at=now + timedelta(days=3),
            created_at=now,
        )
        for n in range(MESSAGES)
    )
    return {}


def _dispatch_all(context: dict) -> None:
    from tradeassure.platform.outbox import outbox_dispatch_due

    handled = outbox_dispatch_due(batch_size=MESSAGES)
    assert handled == MESSAGES, handled


def _bare_inserts(context: dict) -> None:
    """The floor: one committed single-row write per message, nothing else."""
    from django.db import transaction

    from tradeassure.core import clock
    from tradeassure.platform.models import Heartbeat

    Heartbeat.objects.all().delete()
    for n in range(MESSAGES):
        with transaction.atomic():
            Heartbeat.objects.create(name=f"floor-{n}", beat_at=clock.now())


def _logged_in_client() -> dict:
    from django.test import Client

    from accounts.models import Organisation, User

    user = User.objects.filter(email="bench@example.com").first()
    if user is None:
        user = User.objects.create_user(
            email="bench@example.com",
            password="bench-pass-2026",
            role="buyer",
            organisation=Organisation.objects.create(name="Bench Ltd", kind="buyer"),
        )
    client = Client()
    client.force_login(user)
    return {"client": client}


BENCHMARKS = [
    Benchmark(
        name=f"outbox dispatch of {MESSAGES} emails vs {MESSAGES} bare inserts",
        setup=_outbox_with_due_emails,
        baseline=_bare_inserts,
        subject=_dispatch_all,
        notes="claim (row lock) + send (locmem) + mark sent, per message",
    ),
    Benchmark(
        name="home page (full layout, logged in) vs /healthz, 50 requests",
        setup=_logged_in_client,
        baseline=get_many("/healthz", times=50),
        subject=get_many("/", times=50),
        notes="cost of the base template, navigation and bell count over a JSON view",
    ),
]
