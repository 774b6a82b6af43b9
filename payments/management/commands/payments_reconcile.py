"""Reconcile the payment provider's payments and refunds for a period with the ledger.

Exit code 1 when anything differs (run it daily, after the period's webhooks have arrived).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from payments.reconcile import reconcile
from tradeassure.core import clock


def _when(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"Not a date or date-time: {value!r}.")
        moment = datetime(day.year, day.month, day.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.now().tzinfo)
    return moment


class Command(BaseCommand):
    help = (
        "List the provider's payments and refunds created in [--since, --until) and report any "
        "the ledger does not know, or that differ in amount or status. Exit 1 on a difference."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="ISO date or date-time (default: 2 days ago)")
        parser.add_argument("--until", help="ISO date or date-time (default: now)")
        parser.add_argument("--provider", default=None, help="default: PAYMENT_PROVIDER")

    def handle(self, *args, since=None, until=None, provider=None, **options) -> None:
        until_at = _when(until) if until else clock.now()
        since_at = _when(since) if since else until_at - timedelta(days=2)
        if since_at >= until_at:
            raise CommandError("--since must be before --until.")
        provider = provider or settings.PAYMENT_PROVIDER
        try:
            report = reconcile(provider=provider, since=since_at, until=until_at)
        except LookupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"{provider} {since_at.isoformat()} .. {until_at.isoformat()}: "
            f"{report.checked_payments} payment(s), {report.checked_refunds} refund(s) checked."
        )
        for note in report.notes:
            self.stdout.write(f"NOTE: {note}")
        if report.ok:
            self.stdout.write(self.style.SUCCESS("OK: the provider and the ledger agree."))
            return
        for difference in report.differences:
            self.stderr.write(f"DIFFERENCE: {difference}")
        raise CommandError(f"{len(report.differences)} difference(s) with {provider}.")
