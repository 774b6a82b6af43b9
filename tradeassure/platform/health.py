"""Health endpoints for the orchestrator.

/healthz/live (liveness): 200 whenever the process answers; it checks nothing else, so a broker
or database outage never gets the web container restarted. /healthz/ready and /healthz
(readiness): 200 when the database and the broker answer, 503 otherwise.
"""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tradeassure.celery import app as celery_app
from tradeassure.platform.models import Heartbeat


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return False, type(exc).__name__
    return True, "ok"


def _broker_ok() -> tuple[bool, str]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT)
    except Exception as exc:
        return False, type(exc).__name__
    return True, "ok"


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves requests. Restart the container only when this fails."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and the broker answer (send traffic only while this is 200)."""
    database_ok, database_detail = _database_ok()
    broker_ok, broker_detail = _broker_ok()
    body: dict[str, str | None] = {
        "status": "ok" if database_ok and broker_ok else "unavailable",
        "database": database_detail,
        "broker": broker_detail,
    }
    if database_ok:
        beat = Heartbeat.objects.filter(name="worker").values_list("beat_at", flat=True).first()
        body["worker_last_seen"] = beat.isoformat() if beat else None
    return JsonResponse(body, status=200 if database_ok and broker_ok else 503)
