"""How a webhook attempt reaches the partner: the vetted address only, and a bounded answer.

Real HTTP servers on loopback addresses; a resolver that changes its answer between calls (what
a DNS-rebinding attacker's name server does) stands in for DNS.
"""

import socket

import pytest

from tests.api.factories import WebhookEndpointFactory, make_event
from tests.api.receiver import start_receiver
from tests.factories import BuyerFactory
from tradeassure.platform import webhooks
from tradeassure.platform.models import WebhookAttempt, WebhookDelivery
from tradeassure.platform.outbox import outbox_dispatch_due
from tradeassure.platform.webhooks import webhook_deliver_due

pytestmark = pytest.mark.django_db

PARTNER_HOST = "hooks.partner.example"
PARTNER = "127.0.0.1"  # the partner's server, "public" for this test
INTERNAL = "127.0.0.2"  # an internal service the attacker wants to reach


@pytest.fixture
def rebinding_resolver(monkeypatch):
    """PARTNER_HOST resolves to the partner's address once, then to the internal one."""
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != PARTNER_HOST:
            return real_getaddrinfo(host, port, *args, **kwargs)
        answer = PARTNER if not lookups else INTERNAL
        lookups.append(answer)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


@pytest.fixture
def loopback_partner_is_public(settings, monkeypatch):
    """Vetting on (as in production), with the partner's loopback address counted as public."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    monkeypatch.setattr(webhooks, "address_is_public", lambda address: address == PARTNER)


@pytest.fixture
def partner_and_internal():
    """Two real servers on one port: the partner's on PARTNER, an internal one on INTERNAL."""
    partner, partner_server = start_receiver(PARTNER)
    port = partner_server.server_address[1]
    internal, internal_server = start_receiver(INTERNAL, port=port)
    yield partner, internal, port
    for server in (partner_server, internal_server):
        server.shutdown()
        server.server_close()


def _deliver_one(url: str) -> WebhookDelivery:
    buyer = BuyerFactory()
    WebhookEndpointFactory(organisation=buyer.organisation, url=url)
    make_event(topic="order.confirmed", audience=[buyer.organisation])
    outbox_dispatch_due()
    webhook_deliver_due()
    return WebhookDelivery.objects.get()


def test_delivery_connects_to_the_vetted_address_when_dns_rebinds(
    rebinding_resolver, loopback_partner_is_public, partner_and_internal
):
    # given an endpoint whose name resolves to the partner, then (rebound) to an internal host
    partner, internal, port = partner_and_internal

    # when an event is delivered to it
    delivery = _deliver_one(f"http://{PARTNER_HOST}:{port}/hooks")

    # then the name was resolved once, and the request went to the vetted address only,
    # still naming the partner's host
    assert rebinding_resolver == [PARTNER]
    assert len(partner.requests) == 1
    assert internal.requests == []
    assert partner.requests[0].headers["Host"] == f"{PARTNER_HOST}:{port}"
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED


def test_a_name_that_resolves_to_an_internal_address_is_never_contacted(
    settings, monkeypatch, partner_and_internal
):
    # given vetting on and a name that resolves straight to the internal service
    partner, internal, port = partner_and_internal
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port_, *args, **kwargs):
        if host == PARTNER_HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (INTERNAL, port_))]
        return real_getaddrinfo(host, port_, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    buyer = BuyerFactory()
    endpoint = WebhookEndpointFactory(
        organisation=buyer.organisation, url=f"http://{PARTNER_HOST}:{port}/hooks"
    )

    # when an event is due for it
    make_event(topic="order.confirmed", audience=[buyer.organisation])
    outbox_dispatch_due()
    webhook_deliver_due()

    # then no request left, and the attempt says why (retried later, in case DNS changes back)
    assert internal.requests == [] and partner.requests == []
    attempt = WebhookAttempt.objects.get(delivery__endpoint=endpoint)
    assert "public address" in attempt.error
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING


def test_an_endless_answer_is_read_only_up_to_the_cap(receiver):
    # given an endpoint that answers 200 with a 256 MB body
    receiver.answer_bytes = 256 * 1024 * 1024

    # when an event is delivered to it
    delivery = _deliver_one(receiver.url)

    # then the attempt is recorded with the start of the body, and the worker hung up long
    # before the endpoint finished sending
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    attempt = delivery.attempt_log.get()
    assert attempt.response_status == 200
    assert attempt.response_body == "x" * 1000
    assert receiver.answer_finished.wait(60)
    assert receiver.body_sent_bytes < receiver.answer_bytes
