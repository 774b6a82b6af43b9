"""How a webhook attempt reaches the partner: the vetted address only, and a bounded answer.

Real HTTP servers on loopback addresses; a resolver that changes its answer between calls (what
a DNS-rebinding attacker's name server does) stands in for DNS.
"""

import socket
import ssl
import subprocess

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


def _certificate(directory, name: str) -> tuple[str, str]:
    """A self-signed certificate for `name` (openssl CLI), as (certificate, key) paths."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name}",
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture
def tls_partner(tmp_path, monkeypatch, settings):
    """An HTTPS receiver on 127.0.0.1 serving a certificate for `served_name`, trusted by the
    sender (its CA bundle is that certificate), and PARTNER_HOST resolving to it."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == PARTNER_HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PARTNER, port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    servers = []

    def start(served_name: str):
        cert, key = _certificate(tmp_path, served_name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        names: list[str | None] = []
        context.sni_callback = lambda sock, name, ctx: names.append(name)
        monkeypatch.setattr(webhooks.certifi, "where", lambda: cert)
        receiver, server = start_receiver(PARTNER, tls=context)
        servers.append(server)
        return receiver, server.server_address[1], names

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_https_delivery_to_the_vetted_address_names_the_partner_for_sni_and_the_certificate(
    tls_partner,
):
    # given the partner's HTTPS server, with a certificate for its host name
    receiver, port, sni_names = tls_partner(PARTNER_HOST)

    # when an event is delivered over https to the partner's name
    delivery = _deliver_one(f"https://{PARTNER_HOST}:{port}/hooks")

    # then the TLS handshake named the partner (SNI), its certificate was accepted for that
    # name, and the request carried the partner's Host
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED, delivery.last_error
    assert sni_names == [PARTNER_HOST]
    assert receiver.requests[0].headers["Host"] == f"{PARTNER_HOST}:{port}"


def test_https_delivery_refuses_a_certificate_for_another_name(tls_partner):
    # given a server at the partner's address whose certificate names someone else
    receiver, port, _ = tls_partner("someone-else.example")

    # when an event is delivered to the partner's name
    delivery = _deliver_one(f"https://{PARTNER_HOST}:{port}/hooks")

    # then no request is made and the attempt says the certificate did not match
    assert receiver.requests == []
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert "SSL" in delivery.last_error or "certificate" in delivery.last_error
