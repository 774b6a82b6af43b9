"""Reads behind the partner API's own resources, already filtered to what the caller may see."""

from django.db.models import QuerySet

from accounts.models import ApiKey, User
from tradeassure.platform.models import (
    DomainEvent,
    Notification,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


def _organisation_id(user: User) -> int | None:
    """The caller's organisation, or None (staff, or a user object without one)."""
    return getattr(user, "organisation_id", None)


def events_for(user: User) -> QuerySet[DomainEvent]:
    """The events feed: only events whose audience includes the caller's organisation."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return DomainEvent.objects.none()
    return DomainEvent.objects.filter(audience__id=organisation_id)


def notifications_for(user: User) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient_id=user.pk)


def api_keys_for(user: User) -> QuerySet[ApiKey]:
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return ApiKey.objects.none()
    return ApiKey.objects.filter(organisation_id=organisation_id).select_related(
        "user", "created_by", "revoked_by"
    )


def webhook_endpoints_for(user: User) -> QuerySet[WebhookEndpoint]:
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return WebhookEndpoint.objects.none()
    return WebhookEndpoint.objects.filter(organisation_id=organisation_id)


def webhook_deliveries_for(user: User) -> QuerySet[WebhookDelivery]:
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return WebhookDelivery.objects.none()
    return WebhookDelivery.objects.filter(endpoint__organisation_id=organisation_id).select_related(
        "endpoint"
    )


def webhook_attempts_for(user: User) -> QuerySet[WebhookAttempt]:
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return WebhookAttempt.objects.none()
    return WebhookAttempt.objects.filter(delivery__endpoint__organisation_id=organisation_id)
