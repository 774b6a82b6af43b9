"""Enrol a staff member's authenticator app: create a TOTP device, print its otpauth:// URI."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.otp import totp_device_enrol


class Command(BaseCommand):
    help = (
        "Create (or with --replace, re-key) the TOTP device the admin log-in asks for, and print "
        "the otpauth:// URI to scan into an authenticator app (or turn into a QR code)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", default="authenticator", help="Device name (one per app).")
        parser.add_argument(
            "--replace", action="store_true", help="Discard the old key (lost phone)."
        )

    def handle(self, *args: object, **options: object) -> None:
        try:
            user = User.objects.get(email__iexact=options["email"])
        except User.DoesNotExist as exc:
            raise CommandError(f"No user with the email {options['email']}.") from exc
        device = totp_device_enrol(
            user=user, name=str(options["name"]), replace=bool(options["replace"])
        )
        if not user.is_staff:
            self.stderr.write(f"Note: {user.email} is not staff; only the admin asks for codes.")
        self.stdout.write(device.config_url)
