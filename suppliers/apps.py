from django.apps import AppConfig


class SuppliersConfig(AppConfig):
    name = "suppliers"
    periodic_tasks: list = []
