"""Partner webhooks: fan each domain event out to subscribed endpoints, then deliver it signed.

Flow: `event_publish` writes a DomainEvent and an outbox row on the "webhook" channel in the
caller's transaction. The outbox dispatcher calls `webhook_fan_out`, which creates one
WebhookDelivery per subscribed endpoint (unique per endpoint and event, so a re-run adds
nothing). `webhook_deliver_due` (Celery, every 30 s and kicked after each fan-out) claims due
deliveries with a compare-and-swap update and a lease, makes the HTTP requests outside any
transaction (a few at once from a small thread pool, WEBHOOK_DELIVERY_CONCURRENCY), and records
each attempt only if it still holds the claim. A worker that dies mid-request leaves a lease that expires; the next sweep retries. Delivery is at-least-once: the
`TradeAssure-Delivery` header is stable across retries so a receiver can drop a repeat.

Each attempt resolves the partner's host once, vets every address it got (no private networks
outside the embedded profile) and connects to that vetted address itself, with the URL's host
kept for the Host header, TLS SNI and certificate check: nothing resolves the name a second time,
so a DNS answer that changes between the check and the connection (DNS rebinding) cannot point
the request at an internal address. The response body is read up to MAX_RESPONSE_BYTES and the
connection dropped, so an endpoint cannot make a worker read without end.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from tradeassure.core import clock
from tradeassure.core.bulk import AnyOf
from tradeassure.platform.models import (
    DomainEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from tradeassure.platform.outbox import retry_delay
from tradeassure.platform.topics import PlatformTopic

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "TradeAssure-Signature"
TIMESTAMP_HEADER = "TradeAssure-Timestamp"
DELIVERY_HEADER = "TradeAssure-Delivery"
EVENT_HEADER = "TradeAssure-Event"
GIVE_UP_AFTER = timedelta(days=3)
REQUEST_TIMEOUT_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 5
# How much of an endpoint's answer is read (the attempt log keeps the first 1000 characters).
MAX_RESPONSE_BYTES = 16 * 1024
# A claim outlives the longest request by a margin, so only a dead worker's claim expires.
LEASE = timedelta(seconds=REQUEST_TIMEOUT_SECONDS + 50)
TEST_TOPIC = PlatformTopic.WEBHOOK_TEST


class WebhookUrlRefused(Exception):
    """The endpoint's URL points somewhere the platform will not send data."""


def event_envelope(event: DomainEvent) -> dict[str, Any]:
    """How an event looks to a partner, in the events feed and in a webhook body alike."""
    return {
        "id": event.pk,
        "topic": event.topic,
        "subject": {"type": event.subject_type, "id": event.subject_id},
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": event.payload,
    }


def canonical_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over `<timestamp>.<body>`, hex: what a receiver recomputes to verify."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(endpoint: WebhookEndpoint, *, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`; during the 24 h after a rotation also `,v1=<hex with the previous secret>`."""
    signatures = [sign(secret=endpoint.secret, timestamp=timestamp, body=body)]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > clock.now()
    ):
        signatures.append(sign(secret=endpoint.previous_secret, timestamp=timestamp, body=body))
    return ",".join(f"v1={signature}" for signature in signatures)


def topic_matches(patterns: list[str], topic: str) -> bool:
    """Empty means every topic; `order.*` matches every topic under `order.`."""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern == topic or (pattern.endswith(".*") and topic.startswith(pattern[:-1])):
            return True
    return False


def webhook_fan_out(payload: dict[str, Any]) -> None:
    """Outbox handler for the "webhook" channel: one delivery per subscribed endpoint.

    The payload names one event (`event_id`, from `event_publish`) or a batch's events
    (`event_ids`, from `events_publish_many`: one outbox row per batch, not per event)."""
    if "event_ids" in payload:
        webhook_fan_out_many(payload["event_ids"])
        return
    event_id = payload.get("event_id")
    event = None if event_id is None else DomainEvent.objects.filter(pk=event_id).first()
    if event is None:
        return
    organisation_ids = list(event.audience.values_list("id", flat=True))
    if not organisation_ids:
        return
    now = clock.now()
    created = 0
    for endpoint in WebhookEndpoint.objects.filter(
        organisation_id__in=organisation_ids, is_active=True
    ).order_by("id"):
        if not topic_matches(endpoint.topics, event.topic):
            continue
        _, was_created = WebhookDelivery.objects.get_or_create(
            endpoint=endpoint,
            event=event,
            defaults={
                "topic": event.topic,
                "payload": event_envelope(event),
                "next_attempt_at": now,
                "give_up_at": now + GIVE_UP_AFTER,
                "created_at": now,
            },
        )
        created += int(was_created)
    if created:
        transaction.on_commit(kick_delivery)


def webhook_fan_out_many(event_ids: list[int]) -> None:
    """`webhook_fan_out` for a batch's events, with a constant number of queries: the events,
    their audiences, the audiences' active endpoints, and one INSERT of the deliveries (a delivery
    that exists already is left as it is, by its unique (endpoint, event), so a re-run of the
    outbox row adds nothing)."""
    through = DomainEvent.audience.through
    audiences: dict[int, list[int]] = {}
    for event_id, organisation_id in through.objects.filter(
        AnyOf("domainevent_id", event_ids)
    ).values_list("domainevent_id", "organisation_id"):
        audiences.setdefault(event_id, []).append(organisation_id)
    if not audiences:
        return
    endpoints: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(
        organisation_id__in={org for orgs in audiences.values() for org in orgs}, is_active=True
    ).order_by("id"):
        endpoints.setdefault(endpoint.organisation_id, []).append(endpoint)
    if not endpoints:
        return
    now = clock.now()
    deliveries = [
        WebhookDelivery(
            endpoint=endpoint,
            event=event,
            topic=event.topic,
            payload=event_envelope(event),
            next_attempt_at=now,
            give_up_at=now + GIVE_UP_AFTER,
            created_at=now,
        )
        for event in DomainEvent.objects.filter(
            pk__in=[pk for pk, orgs in audiences.items() if any(o in endpoints for o in orgs)]
        ).order_by("id")
        for organisation_id in sorted(audiences[event.pk])
        for endpoint in endpoints.get(organisation_id, [])
        if topic_matches(endpoint.topics, event.topic)
    ]
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True, batch_size=1000)
        transaction.on_commit(kick_delivery)


def kick_delivery() -> None:
    from tradeassure.platform.tasks import deliver_webhooks

    try:
        deliver_webhooks.delay()
    except Exception:
        logger.warning("Broker unavailable; the webhook sweep will deliver later.")


@dataclass(frozen=True)
class WebhookTarget:
    """Where one attempt connects: the URL's parts and the one address it was vetted at."""

    scheme: str
    host: str
    port: int
    address: str
    path: str
    host_header: str


def check_url_allowed(url: str) -> None:
    """Refuse URLs that would make the platform call into private networks (SSRF).

    Allowed in the embedded profile (`WEBHOOK_ALLOW_PRIVATE_NETWORKS`, default on with DEBUG)
    so a developer can point webhooks at a receiver on localhost.
    """
    parts = _checked_parts(url)
    if settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        return
    _vetted_addresses(cast(str, parts.hostname), _port(parts))


def _checked_parts(url: str):
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlRefused("Only http(s) URLs with a host name can receive webhooks.")
    if not settings.WEBHOOK_ALLOW_HTTP and parts.scheme != "https":
        raise WebhookUrlRefused("Webhook URLs must use https.")
    return parts


def webhook_target(url: str) -> WebhookTarget:
    """Check the URL, resolve its host once and pick the (vetted) address to connect to."""
    parts = _checked_parts(url)
    host = cast(str, parts.hostname)
    port = _port(parts)
    addresses = _vetted_addresses(host, port)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return WebhookTarget(
        scheme=parts.scheme,
        host=host,
        port=port,
        address=addresses[0],
        path=path,
        host_header=parts.netloc.rsplit("@", 1)[-1],
    )


def _port(parts) -> int:
    try:
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlRefused("The URL's port is not a number.") from exc
    return port or (443 if parts.scheme == "https" else 80)


def _vetted_addresses(host: str, port: int) -> list[str]:
    """Resolve `host` once; refuse it if any address is not public (unless allowed)."""
    try:
        # An internet host resolves to AF_INET/AF_INET6 socket addresses, whose host is text (the
        # stubs also allow the (int, bytes) of other address families).
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookUrlRefused(f"The host name does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(cast(str, info[4][0]) for info in infos))
    if not addresses:
        raise WebhookUrlRefused("The host name does not resolve.")
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for address in addresses:
            if not address_is_public(address):
                raise WebhookUrlRefused("Webhook URLs must point to a public address.")
    return addresses


def address_is_public(address: str) -> bool:
    """Only internet addresses receive webhooks: no loopback, private, link-local or reserved."""
    return ipaddress.ip_address(address.split("%")[0]).is_global


def _post(target: WebhookTarget, *, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST to the vetted address (never re-resolving the name); read at most the body cap."""
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=REQUEST_TIMEOUT_SECONDS)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            # The certificate must be the URL's host's, and SNI names it, not the address.
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address, target.port, timeout=timeout, retries=False, maxsize=1
        )
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header, "Accept-Encoding": "identity"},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            content = response.read(MAX_RESPONSE_BYTES, decode_content=False)
        finally:
            # Drop the connection rather than drain whatever else the endpoint sends.
            response.close()
        return response.status, content
    finally:
        pool.close()


def webhook_deliver_due(*, batch_size: int = 100) -> int:
    """Deliver what is due; returns how many attempts were made. Safe from many workers at once.

    Deliveries are claimed a few at a time (at most WEBHOOK_DELIVERY_CONCURRENCY, each with its
    own lease) and their HTTP requests made at once by a small thread pool; the threads only
    make the requests (no database), the attempts are recorded here, each under its claim. A
    batch never claims more than it can start at once, so no lease ages in a queue.
    """
    concurrency = max(1, int(getattr(settings, "WEBHOOK_DELIVERY_CONCURRENCY", 8)))
    handled = 0
    pool: ThreadPoolExecutor | None = None
    try:
        while handled < batch_size:
            claimed: list[WebhookDelivery] = []
            while len(claimed) < min(concurrency, batch_size - handled):
                delivery = _claim_next_due()
                if delivery is None:
                    break
                claimed.append(delivery)
            if not claimed:
                break
            if len(claimed) == 1:
                results = [_request(claimed[0])]
            else:
                pool = pool or ThreadPoolExecutor(max_workers=concurrency)
                results = list(pool.map(_request, claimed))
            for delivery, result in zip(claimed, results, strict=True):
                _record_attempt(delivery, **result)
            handled += len(claimed)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return handled


def _claim_next_due() -> WebhookDelivery | None:
    now = clock.now()
    due = Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=WebhookDelivery.Status.DELIVERING, lease_expires_at__lte=now
    )
    candidates = (
        WebhookDelivery.objects.filter(due, endpoint__is_active=True)
        .order_by("next_attempt_at", "id")
        .values("id", "attempts", "status")[:20]
    )
    for candidate in candidates:
        # Compare-and-swap: only one worker moves this row from what it saw to its own claim.
        claimed = WebhookDelivery.objects.filter(
            pk=candidate["id"], attempts=candidate["attempts"], status=candidate["status"]
        ).update(
            status=WebhookDelivery.Status.DELIVERING,
            attempts=F("attempts") + 1,
            lease_expires_at=now + LEASE,
        )
        if not claimed:
            continue
        if candidate["status"] == WebhookDelivery.Status.DELIVERING and candidate["attempts"]:
            # The previous claim's worker died mid-attempt: say so in the attempt log.
            WebhookAttempt.objects.get_or_create(
                delivery_id=candidate["id"],
                number=candidate["attempts"],
                defaults={
                    "started_at": now,
                    "error": "The delivery worker stopped before this attempt finished.",
                },
            )
        return WebhookDelivery.objects.select_related("endpoint").get(pk=candidate["id"])
    return None


def _request(delivery: WebhookDelivery) -> dict[str, Any]:
    """Make one delivery's signed request; touches no database (it runs in the pool's threads)
    and returns what `_record_attempt` records."""
    endpoint = delivery.endpoint
    body = canonical_body(delivery.payload)
    timestamp = int(clock.now().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "TradeAssure-Webhooks/1",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(endpoint, timestamp=timestamp, body=body),
        DELIVERY_HEADER: str(delivery.pk),
        EVENT_HEADER: delivery.topic,
    }
    started_at = clock.now()
    started = time.monotonic()
    response_status: int | None = None
    response_body = ""
    error = ""
    try:
        target = webhook_target(endpoint.url)
        response_status, content = _post(target, body=body, headers=headers)
        response_body = content.decode("utf-8", errors="replace")[:1000]
        if not 200 <= response_status < 300:
            error = f"The endpoint answered HTTP {response_status}."
    except (urllib3.exceptions.HTTPError, OSError, WebhookUrlRefused) as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    duration_ms = int((time.monotonic() - started) * 1000)
    return {
        "started_at": started_at,
        "duration_ms": duration_ms,
        "response_status": response_status,
        "response_body": response_body,
        "error": error,
    }


@transaction.atomic
def _record_attempt(
    delivery: WebhookDelivery,
    *,
    started_at,
    duration_ms: int,
    response_status: int | None,
    response_body: str,
    error: str,
) -> None:
    current = WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk).first()
    if (
        current is None
        or current.attempts != delivery.attempts
        or current.status != WebhookDelivery.Status.DELIVERING
    ):
        return  # our lease expired and another worker took over; its result is the one kept
    succeeded = not error
    WebhookAttempt.objects.create(
        delivery=current,
        number=current.attempts,
        started_at=started_at,
        duration_ms=duration_ms,
        response_status=response_status,
        response_body=response_body,
        error=error,
        succeeded=succeeded,
    )
    now = clock.now()
    current.last_response_status = response_status
    current.last_error = error
    current.lease_expires_at = None
    if succeeded:
        current.status = WebhookDelivery.Status.SUCCEEDED
        current.delivered_at = now
    elif now >= current.give_up_at:
        current.status = WebhookDelivery.Status.FAILED
    else:
        current.status = WebhookDelivery.Status.PENDING
        current.next_attempt_at = now + retry_delay(current.attempts)
    current.save(
        update_fields=[
            "status",
            "delivered_at",
            "last_response_status",
            "last_error",
            "lease_expires_at",
            "next_attempt_at",
        ]
    )
