"""Writes behind the partner API's own resources: API keys, webhook endpoints, notifications.

Every function is keyword-only and atomic, checks that the actor belongs to the organisation
that owns the row, and raises a DomainError (rendered as problem+json) when a rule refuses.
"""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from accounts.error_codes import AccountErrorCode
from accounts.models import ApiKey, Organisation, User
from accounts.team import Capability, team_require
from tradeassure.core import clock
from tradeassure.core.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from tradeassure.platform.catalogue import topic_subscriptions
from tradeassure.platform.error_codes import PlatformErrorCode
from tradeassure.platform.models import Notification, WebhookDelivery, WebhookEndpoint
from tradeassure.platform.webhooks import (
    GIVE_UP_AFTER,
    TEST_TOPIC,
    WebhookUrlRefused,
    kick_delivery,
)

API_KEY_PREFIX = "ta_"
# Roles whose organisation integrates through the API (staff work in the admin).
INTEGRATING_ROLES = {
    User.Role.BUYER,
    User.Role.SUPPLIER_STAFF,
    User.Role.PARTNER,
    User.Role.INSPECTOR,
}
MAX_ACTIVE_KEYS_PER_ORGANISATION = 20
MAX_ENDPOINTS_PER_ORGANISATION = 10
SECRET_ROTATION_OVERLAP = timedelta(hours=24)
TOPIC_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$")
_KEY_PATTERN = re.compile(r"^ta_([0-9a-f]{10})_([0-9a-f]{64})$")


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _require_integrator(actor: User) -> int:
    """Refuse unless `actor` manages integrations; returns their organisation's id, known set."""
    # An anonymous user has no organisation_id attribute: ask is_authenticated first.
    organisation_id = actor.organisation_id if actor.is_authenticated else None
    if organisation_id is None:
        raise NotAllowed("Only members of an organisation can manage its integrations.")
    if actor.role not in INTEGRATING_ROLES:
        raise NotAllowed("Your role cannot manage API keys or webhooks.")
    team_require(actor, Capability.MANAGE_INTEGRATIONS)
    return organisation_id


# --- API keys -----------------------------------------------------------------------------------
@transaction.atomic
def api_key_create(
    *, actor: User, name: str, team_role: str = User.TeamRole.ADMIN
) -> tuple[ApiKey, str]:
    """Issue a key for the actor's organisation with a team role; returns (key row, secret).

    The key acts through its own service member of the organisation (`is_api_service`, the
    key's team role, no usable password): every rule that reads request.user (parties, the
    role table, visibility) applies to it as to a person, and it does not depend on the admin
    who created it staying. The full key is returned only here: only its digest is stored.
    """
    organisation_id = _require_integrator(actor)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(
            "Give the key a name of 1 to 100 characters.",
            fields={"name": ["1 to 100 characters."]},
        )
    organisation = Organisation.objects.get(pk=organisation_id)
    if team_role not in User.TEAM_ROLES_FOR_KIND.get(organisation.kind, ()):
        raise ValidationFailed(
            "Choose a role your organisation has.",
            code=AccountErrorCode.TEAM_ROLE_WRONG_KIND,
            fields={"team_role": ["Not a role of this organisation."]},
        )
    active = ApiKey.objects.filter(organisation_id=organisation_id, revoked_at__isnull=True).count()
    if active >= MAX_ACTIVE_KEYS_PER_ORGANISATION:
        raise Conflict(
            f"Your organisation already has {active} active keys; revoke one first.",
            code=PlatformErrorCode.TOO_MANY_API_KEYS,
        )
    prefix = f"{API_KEY_PREFIX}{secrets.token_hex(5)}"
    while ApiKey.objects.filter(prefix=prefix).exists():  # 40 random bits: a repeat is rare
        prefix = f"{API_KEY_PREFIX}{secrets.token_hex(5)}"
    secret = secrets.token_hex(32)
    service_member = User.objects.create_user(
        email=f"{prefix}@api-keys.invalid",
        password=None,  # unusable: this member never logs in
        full_name=f"API key “{name}”",
        role=actor.role,
        team_role=team_role,
        organisation_id=organisation_id,
        is_api_service=True,
    )
    api_key = ApiKey.objects.create(
        organisation_id=organisation_id,
        user=service_member,
        name=name,
        prefix=prefix,
        hashed_secret=_hash_secret(secret),
        created_at=clock.now(),
        created_by=actor,
    )
    return api_key, f"{prefix}_{secret}"


@transaction.atomic
def api_key_revoke(*, actor: User, api_key_id: int) -> ApiKey:
    """Stop a key working at once; any member of the owning organisation (or staff) may do it."""
    keys = ApiKey.objects.select_for_update().filter(pk=api_key_id)
    if not actor.is_staff:
        keys = keys.filter(organisation_id=_require_integrator(actor))
    api_key = keys.first()
    if api_key is None:
        raise NotFound("No such API key in your organisation.")
    if api_key.revoked_at is None:
        api_key.revoked_at = clock.now()
        api_key.revoked_by = actor
        api_key.save(update_fields=["revoked_at", "revoked_by"])
        User.objects.filter(pk=api_key.user_id, is_api_service=True).update(is_active=False)
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None; records when it was last used (per minute)."""
    match = _KEY_PATTERN.match(raw_key or "")
    if match is None:
        return None
    prefix = f"{API_KEY_PREFIX}{match.group(1)}"
    api_key = (
        ApiKey.objects.select_related("user", "user__organisation")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    if api_key is None or not hmac.compare_digest(
        api_key.hashed_secret, _hash_secret(match.group(2))
    ):
        return None
    user = api_key.user
    if not user.is_active or user.organisation_id != api_key.organisation_id:
        return None
    now = clock.now()
    if api_key.last_used_at is None or api_key.last_used_at < now - timedelta(minutes=1):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


# --- Webhook endpoints --------------------------------------------------------------------------
def _clean_topics(topics) -> list[str]:
    """Exact topics of the catalogue or `<prefix>.*` patterns over them: anything else would
    never match an event, so it is refused rather than stored."""
    cleaned = sorted({str(topic).strip() for topic in (topics or []) if str(topic).strip()})
    bad = [topic for topic in cleaned if not TOPIC_PATTERN.match(topic) or len(topic) > 80]
    if bad:
        raise ValidationFailed(
            "Topics look like `order.confirmed` or `order.*`.",
            fields={"topics": [f"Not a topic: {topic!r}." for topic in bad]},
        )
    known = set(topic_subscriptions())
    unknown = [topic for topic in cleaned if topic not in known]
    if unknown:
        raise ValidationFailed(
            "Subscribe to topics the API publishes (or `<prefix>.*` patterns over them): see "
            "`TopicSubscription` in /api/schema/.",
            fields={"topics": [f"Unknown topic: {topic!r}." for topic in unknown]},
        )
    return cleaned


def _clean_url(url: str) -> str:
    from tradeassure.platform.webhooks import check_url_allowed

    url = (url or "").strip()
    try:
        check_url_allowed(url)
    except WebhookUrlRefused as exc:
        raise ValidationFailed(str(exc), fields={"url": [str(exc)]}) from exc
    return url


def _new_webhook_secret() -> str:
    return f"whsec_{secrets.token_hex(24)}"


def _locked_endpoint(organisation_id: int, endpoint_id: int) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.select_for_update()
        .filter(pk=endpoint_id, organisation_id=organisation_id)
        .first()
    )
    if endpoint is None:
        raise NotFound("No such webhook endpoint in your organisation.")
    return endpoint


@transaction.atomic
def webhook_endpoint_create(
    *, actor: User, url: str, description: str = "", topics: list[str] | None = None
) -> tuple[WebhookEndpoint, str]:
    """Subscribe a URL to the organisation's events; returns (endpoint, signing secret)."""
    organisation_id = _require_integrator(actor)
    url = _clean_url(url)
    topics = _clean_topics(topics)
    count = WebhookEndpoint.objects.filter(organisation_id=organisation_id).count()
    if count >= MAX_ENDPOINTS_PER_ORGANISATION:
        raise Conflict(
            f"Your organisation already has {count} webhook endpoints; delete one first.",
            code=PlatformErrorCode.TOO_MANY_WEBHOOK_ENDPOINTS,
        )
    secret = _new_webhook_secret()
    endpoint = WebhookEndpoint.objects.create(
        organisation_id=organisation_id,
        url=url,
        description=(description or "").strip()[:200],
        topics=topics,
        secret=secret,
        created_at=clock.now(),
        created_by=actor,
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_update(
    *,
    actor: User,
    endpoint_id: int,
    url: str | None = None,
    description: str | None = None,
    topics: list[str] | None = None,
    is_active: bool | None = None,
) -> WebhookEndpoint:
    """Change where and what an endpoint receives, or pause it (deliveries wait while paused)."""
    endpoint = _locked_endpoint(_require_integrator(actor), endpoint_id)
    if url is not None:
        endpoint.url = _clean_url(url)
    if description is not None:
        endpoint.description = description.strip()[:200]
    if topics is not None:
        endpoint.topics = _clean_topics(topics)
    if is_active is not None:
        endpoint.is_active = is_active
    endpoint.save(update_fields=["url", "description", "topics", "is_active"])
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, actor: User, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new signing secret; the old one still signs (as a second `v1=`) for 24 hours."""
    endpoint = _locked_endpoint(_require_integrator(actor), endpoint_id)
    secret = _new_webhook_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = clock.now() + SECRET_ROTATION_OVERLAP
    endpoint.secret = secret
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_delete(*, actor: User, endpoint_id: int) -> None:
    """Remove an endpoint with its delivery log; pending deliveries are dropped."""
    _locked_endpoint(_require_integrator(actor), endpoint_id).delete()


@transaction.atomic
def webhook_send_test(*, actor: User, endpoint_id: int) -> WebhookDelivery:
    """Queue a `webhook.test` delivery so a partner can check their receiver and signature code."""
    endpoint = _locked_endpoint(_require_integrator(actor), endpoint_id)
    now = clock.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=None,
        topic=TEST_TOPIC,
        is_test=True,
        payload={},
        next_attempt_at=now,
        give_up_at=now + timedelta(hours=1),
        created_at=now,
    )
    delivery.payload = {
        "id": None,
        "topic": TEST_TOPIC,
        "subject": {"type": "webhook_endpoint", "id": endpoint.pk},
        "occurred_at": now.isoformat().replace("+00:00", "Z"),
        "data": {"message": "A test delivery from TradeAssure.", "delivery_id": delivery.pk},
    }
    delivery.save(update_fields=["payload"])
    transaction.on_commit(kick_delivery)
    return delivery


@transaction.atomic
def webhook_redeliver(*, actor: User, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now (same body and delivery id), with a fresh 3-day retry window.

    Members of the endpoint's organisation may, and staff (from the admin).
    """
    deliveries = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id)
    if not actor.is_staff:
        deliveries = deliveries.filter(endpoint__organisation_id=_require_integrator(actor))
    delivery = deliveries.first()
    if delivery is None:
        raise NotFound("No such webhook delivery in your organisation.")
    if delivery.status == WebhookDelivery.Status.DELIVERING:
        raise Conflict(
            "This delivery is being attempted right now.",
            code=PlatformErrorCode.DELIVERY_IN_PROGRESS,
        )
    now = clock.now()
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = now
    delivery.give_up_at = now + GIVE_UP_AFTER
    delivery.save(update_fields=["status", "next_attempt_at", "give_up_at"])
    transaction.on_commit(kick_delivery)
    return delivery


# --- Notifications ------------------------------------------------------------------------------
@transaction.atomic
def notification_mark_read(*, user: User, notification_id: int) -> Notification:
    notification = (
        Notification.objects.select_for_update().filter(pk=notification_id, recipient=user).first()
    )
    if notification is None:
        raise NotFound("No such notification.")
    if notification.read_at is None:
        notification.read_at = clock.now()
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notification_mark_all_read(*, user: User) -> int:
    return Notification.objects.filter(Q(recipient=user) & Q(read_at__isnull=True)).update(
        read_at=clock.now()
    )
