"""A connection the database dropped costs no request (issue 15 item 4), with the production
profile's connection reuse: `CONN_MAX_AGE` with `CONN_HEALTH_CHECKS`.

The request goes through Django's WSGI handler as gunicorn calls it (the test client unhooks
the per-request connection handling); the connection is killed server-side between requests,
as a PostgreSQL restart does to every idle connection of every worker.
"""

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from django.test import RequestFactory

from tests.factories import BuyerFactory
from tests.test_deploy import production_settings
from tradeassure.platform.api.services import api_key_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def production_database() -> dict:
    """The production profile's database settings, read in a fresh interpreter."""
    return production_settings("DATABASES")["DATABASES"]["default"]


def _serve(path: str, raw_key: str) -> tuple[int, bytes]:
    """One request through the WSGI handler, closed as a server closes it (request_finished)."""
    environ = RequestFactory()._base_environ(
        PATH_INFO=path,
        REQUEST_METHOD="GET",
        HTTP_AUTHORIZATION=f"Bearer {raw_key}",
        SERVER_NAME="testserver",
    )
    statuses: list[str] = []
    response = WSGIHandler()(environ, lambda status, headers, *exc: statuses.append(status))
    body = b"".join(response)
    response.close()
    return int(statuses[0].split()[0]), body


def _terminate_server_side() -> None:
    """What a database restart does: end this connection's backend from another session."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    admin = connections.create_connection("default")
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        admin.close()


@pytest.fixture
def reused_connections(production_database):
    """The production profile's connection settings on the test connection, restored after."""
    saved = {
        name: connection.settings_dict[name] for name in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")
    }

    def use(*, health_checks: bool) -> None:
        connection.settings_dict["CONN_MAX_AGE"] = production_database["CONN_MAX_AGE"]
        connection.settings_dict["CONN_HEALTH_CHECKS"] = health_checks
        connection.close()

    yield use
    connection.close()
    connection.settings_dict.update(saved)


def test_the_production_profile_reuses_connections_with_health_checks(production_database):
    assert production_database["CONN_MAX_AGE"] > 0
    assert production_database["CONN_HEALTH_CHECKS"] is True


def test_the_first_request_after_the_connection_was_killed_succeeds(
    reused_connections, production_database
):
    # given the production profile's connection handling and a request that kept its connection
    reused_connections(health_checks=production_database["CONN_HEALTH_CHECKS"])
    _, raw_key = api_key_create(actor=BuyerFactory(), name="reconnect")
    status, _ = _serve("/api/v1/orders/", raw_key)
    assert status == 200
    assert connection.connection is not None  # kept open for the next request

    # when PostgreSQL drops that connection while the worker is idle
    _terminate_server_side()

    # then the next request is served (on a new connection), not answered with a 500
    status, body = _serve("/api/v1/orders/", raw_key)
    assert status == 200, body[:300]


def test_without_health_checks_the_same_request_would_fail(reused_connections):
    # given reuse without health checks (what the profile had before)
    reused_connections(health_checks=False)
    _, raw_key = api_key_create(actor=BuyerFactory(), name="reconnect")
    assert _serve("/api/v1/orders/", raw_key)[0] == 200

    # when the connection is dropped server-side
    _terminate_server_side()

    # then the next request fails: this is what the health check prevents
    assert _serve("/api/v1/orders/", raw_key)[0] == 500
    # and the broken connection is not kept for the one after
    assert _serve("/api/v1/orders/", raw_key)[0] == 200
