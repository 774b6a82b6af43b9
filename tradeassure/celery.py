"""The Celery application: workers run thin tasks that call services; beat drives the deadline sweeps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeassure.settings")

app = Celery("tradeassure")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
