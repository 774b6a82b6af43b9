"""Fixtures for API tests: clients authenticated by API key or session."""

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey
from tests.captured_hooks import _fresh_throttle_counters, _payment_captured_hooks  # noqa: F401
from tradeassure.platform.api.services import api_key_create


@pytest.fixture
def api_client_for():
    """An APIClient sending a fresh API key of `user` (or anonymous for None)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            _, raw_key = api_key_create(actor=user, name="tests")
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        return client

    return make


@pytest.fixture
def session_client_for():
    def make(user) -> APIClient:
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(user)
        return client

    return make


def api_key_count() -> int:
    return ApiKey.objects.count()


@pytest.fixture
def receiver():
    from tests.api.receiver import start_receiver

    receiver, server = start_receiver()
    yield receiver
    if receiver.release is not None:
        receiver.release.set()
    server.shutdown()
    server.server_close()
