"""Print a user's current TOTP code: the embedded demo's stand-in for an authenticator app."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.otp import totp_current_token


class Command(BaseCommand):
    help = "Print the current admin log-in code of a user's TOTP device (DEBUG only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: object, **options: object) -> None:
        if not settings.DEBUG:
            raise CommandError("Only in the embedded (DEBUG) profile: use an authenticator app.")
        device = TOTPDevice.objects.filter(user__email__iexact=options["email"]).first()
        if device is None:
            raise CommandError(f"{options['email']} has no TOTP device (manage.py totp_device).")
        self.stdout.write(totp_current_token(device))
