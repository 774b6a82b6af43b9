"""Verify every ledger invariant; exit 1 on any violation (also run nightly by beat)."""

import json

from django.core.management.base import BaseCommand, CommandError

from payments.services import ledger_check_run


class Command(BaseCommand):
    help = (
        "Verify the escrow ledger: zero-sum, signs, escrow identity, provider events applied once."
    )

    def handle(self, *args, **options):
        report = ledger_check_run()
        self.stdout.write("Ledger: " + json.dumps(report.stats, sort_keys=True))
        if report.ok:
            self.stdout.write(self.style.SUCCESS("OK: every invariant holds."))
            return
        for violation in report.violations:
            self.stderr.write(f"VIOLATION: {violation}")
        raise CommandError(
            f"{len(report.violations)} ledger violation(s); a staff alert was raised."
        )
