import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeassure.settings")
application = get_wsgi_application()


def _refuse_misconfigured_production() -> None:
    """gunicorn runs no system checks: run the production payments check before serving."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if not getattr(settings, "TRADEASSURE_PRODUCTION", False):
        return
    from payments.checks import production_payment_problems

    errors, _ = production_payment_problems()
    if errors:
        raise ImproperlyConfigured(
            "Refusing to start: " + " ".join(f"{e.id}: {e.msg}" for e in errors)
        )


_refuse_misconfigured_production()
