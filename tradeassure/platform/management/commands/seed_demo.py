"""Load the demo data: users for every role, then each app's demo content. Safe to run again."""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import import_string

from tradeassure.platform.demo import DEMO_PASSWORD, seed_demo_users


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
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in with any of:"))
        for role, user in users.items():
            self.stdout.write(f"  {role:<16} {user.email:<32} password: {DEMO_PASSWORD}")
