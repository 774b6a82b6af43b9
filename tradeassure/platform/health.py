"""Health endpoints for the orchestrator and for monitoring.

/healthz/live (liveness): 200 whenever the process answers; it checks nothing else, so a broker
or database outage never gets the web container restarted.

/healthz/ready and /healthz (readiness): 503 "unavailable" when the database does not answer
(no request can be served); 200 "degraded" when only Redis (the broker or the cache) is down,
because requests still succeed then: throttles fail open and side effects wait in the outbox
until the broker is back, so taking the web out of rotation would only turn a partial outage into
a full one; 200 "ok" when everything answers. Monitoring alerts on anything but "ok".
"""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tradeassure.celery import app as celery_app
from tradeassure.platform.models import Heartbeat

HEALTH_CACHE_KEY = "tradeassure:healthz"


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


def _cache_ok() -> tuple[bool, str]:
    try:
        cache.set(HEALTH_CACHE_KEY, "ok", timeout=10)
        cache.get(HEALTH_CACHE_KEY)
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
    """Readiness: 503 without the database; 200 "degraded" without the broker or the cache."""
    database_ok, database_detail = _database_ok()
    broker_ok, broker_detail = _broker_ok()
    cache_ok, cache_detail = _cache_ok()
    if not database_ok:
        status = "unavailable"
    elif broker_ok and cache_ok:
        status = "ok"
    else:
        status = "degraded"
    body: dict[str, str | None] = {
        "status": status,
        "database": database_detail,
        "broker": broker_detail,
        "cache": cache_detail,
    }
    if database_ok:
        beat = Heartbeat.objects.filter(name="worker").values_list("beat_at", flat=True).first()
        body["worker_last_seen"] = beat.isoformat() if beat else None
    return JsonResponse(body, status=200 if database_ok else 503)
