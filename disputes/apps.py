from django.apps import AppConfig


class DisputesConfig(AppConfig):
    name = "disputes"
    periodic_tasks: list = []
