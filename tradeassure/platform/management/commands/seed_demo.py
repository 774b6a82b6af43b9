"""Load the demo data: users for every role, then each app's demo content. Safe to run again."""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import import_string

from accounts.otp import totp_device_enrol
from tradeassure.platform.demo import DEMO_PASSWORD, seed_demo_teams, seed_demo_users


class Command(BaseCommand):
    help = "Create demo users and data for every role (idempotent)."

    def handle(self, *args, **options):
        with transaction.atomic():
            users = seed_demo_users()
            # Each app may ship `<app>/demo.py` with `seed(users)`; they run in INSTALLED_APPS
            # order, which is the dependency order (payments, suppliers, orders, disputes).
            for config in apps.get_app_configs():
                try:
                    seed = import_string(f"{config.name}.demo.seed")
                except ImportError:
                    continue
                seed(users)
            # Every demo buyer and supplier company: admin, purchasing/sales and finance.
            team = seed_demo_teams(users)
            # The admin asks staff for a TOTP code: give each demo staff member a device.
            devices = {
                role: totp_device_enrol(user=user, name="demo")
                for role, user in users.items()
                if user.is_staff
            }
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in with any of:"))
        for role, user in users.items():
            self.stdout.write(f"  {role:<16} {user.email:<32} password: {DEMO_PASSWORD}")
        self.stdout.write(
            " Their colleagues (Team page: the logins above are their company's admins):"
        )
        for key, user in team.items():
            self.stdout.write(
                f"  {key:<24} {user.email:<44} ({user.get_team_role_display()}) "
                f"password: {DEMO_PASSWORD}"
            )
        if devices:
            self.stdout.write(
                " The admin also asks staff for a code: scan a URI below into an authenticator "
                "app, or run\n   .venv/bin/python manage.py totp_code EMAIL"
            )
            for role, device in devices.items():
                self.stdout.write(f"  {role:<16} {device.config_url}")
