from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    periodic_tasks: list = []
