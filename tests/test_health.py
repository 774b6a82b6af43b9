"""/healthz: 200 "ok" when everything answers, 200 "degraded" without Redis, 503 without the database."""

import socket

import pytest
from django.urls import reverse

from tradeassure.celery import app as celery_app
from tradeassure.core import clock
from tradeassure.platform.models import Heartbeat

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_url(monkeypatch):
    """Point the Celery app at another broker for one test, restoring it afterwards."""

    def point_at(url: str) -> None:
        # Celery lets the CELERY_BROKER_URL environment variable win over its configuration.
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        monkeypatch.setattr(celery_app.conf, "broker_url", url)
        monkeypatch.setattr(celery_app.conf, "broker_write_url", None)

    return point_at


def test_healthz_is_ok_with_database_and_default_broker(client):
    # given the configured broker (filesystem by default, Redis in CI) and the test database
    Heartbeat.objects.create(name="worker", beat_at=clock.now())

    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok", body
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert body["worker_last_seen"] is not None
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.redis
def test_healthz_is_ok_with_redis_broker(client, broker_url, redis_url):
    broker_url(redis_url)

    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json()["broker"] == "ok"


def test_healthz_is_degraded_but_ready_when_the_broker_is_unreachable(client, broker_url):
    # given a broker address where nothing listens
    broker_url(f"redis://127.0.0.1:{closed_port()}/0")

    # when the orchestrator probes
    response = client.get(reverse("healthz"))

    # then the web still takes traffic (requests do not need the broker), and says why degraded
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == "ok"
    assert body["broker"] != "ok"


def test_healthz_is_degraded_but_ready_when_the_cache_is_unreachable(client, settings):
    # given a Redis cache where nothing listens (the throttles' buckets live there)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }

    response = client.get(reverse("healthz-ready"))

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["cache"] != "ok"
    assert response.json()["database"] == "ok"


def test_healthz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    # given a database that refuses every query
    from django.db import OperationalError

    from tradeassure.platform import health

    def refuse():
        raise OperationalError("database is down")

    monkeypatch.setattr(health.connection, "cursor", refuse)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["database"] != "ok"
    assert "worker_last_seen" not in response.json()


def test_healthz_answers_get_only(client):
    assert client.post(reverse("healthz")).status_code == 405


# --- Liveness is not readiness ---------------------------------------------------------------


def test_liveness_stays_200_while_the_broker_is_down_and_readiness_says_degraded(
    client, broker_url
):
    # given a broker outage
    broker_url(f"redis://127.0.0.1:{closed_port()}/0")

    # when the orchestrator probes liveness and readiness
    live = client.get(reverse("healthz-live"))
    ready = client.get(reverse("healthz-ready"))

    # then the process is alive (no restart) and still ready, degraded
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert "no-cache" in live["Cache-Control"]
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["broker"] != "ok"


def test_liveness_does_not_touch_the_database(client, monkeypatch):
    from django.db import OperationalError

    from tradeassure.platform import health

    def refuse():
        raise OperationalError("database is down")

    monkeypatch.setattr(health.connection, "cursor", refuse)

    assert client.get(reverse("healthz-live")).status_code == 200
    assert client.get(reverse("healthz-ready")).status_code == 503


def test_liveness_answers_get_only(client):
    assert client.post(reverse("healthz-live")).status_code == 405
