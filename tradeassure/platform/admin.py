from django.contrib import admin

from accounts.models import ApiKey
from tradeassure.platform.models import (
    DomainEvent,
    Heartbeat,
    Notification,
    OutboxMessage,
    ReminderSent,
    SystemAlert,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


class ReadOnlyAdminMixin:
    """Records the system writes (timelines, ledger, metrics): staff read them, never edit them.

    Works for ModelAdmin and inlines alike.
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False


@admin.register(DomainEvent)
class DomainEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "topic", "subject_type", "subject_id", "occurred_at"]
    list_filter = ["topic", "subject_type"]
    search_fields = ["topic", "=subject_id"]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "channel", "status", "attempts", "next_attempt_at", "sent_at"]
    list_filter = ["channel", "status"]
    readonly_fields = ["last_error"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["title", "recipient", "created_at", "read_at"]
    list_select_related = ["recipient"]


@admin.register(ReminderSent)
class ReminderSentAdmin(ReadOnlyAdmin):
    list_display = ["sent_at", "subject_kind", "subject_id", "deadline", "due_at", "lead_days"]
    list_filter = ["subject_kind", "deadline", "lead_days"]
    search_fields = ["=subject_id"]


@admin.register(SystemAlert)
class SystemAlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "source", "message", "resolved_at"]
    list_filter = ["source", "resolved_at"]
    readonly_fields = ["source", "message", "created_at"]
    actions = ["mark_resolved"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Mark selected alerts resolved")
    def mark_resolved(self, request, queryset):
        from tradeassure.core import clock

        queryset.filter(resolved_at__isnull=True).update(resolved_at=clock.now())


admin.site.register(Heartbeat, ReadOnlyAdmin)


# --- Partner API: keys and webhooks (owner: API helper) -----------------------------------------
# ApiKey is an accounts model; its admin lives here because revoking goes through the platform's
# API key service, and accounts (the lower layer) may not import the platform.
@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff see keys and can revoke them; the secret itself exists nowhere to show."""

    list_display = [
        "name",
        "prefix",
        "organisation",
        "user",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    list_select_related = ["organisation", "user"]
    search_fields = ["prefix", "name", "organisation__name", "user__email"]
    exclude = ["hashed_secret"]
    readonly_fields = [
        "organisation",
        "user",
        "name",
        "prefix",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        from tradeassure.platform.api.services import api_key_revoke

        ids = list(queryset.filter(revoked_at__isnull=True).values_list("id", flat=True))
        for api_key_id in ids:
            api_key_revoke(actor=request.user, api_key_id=api_key_id)
        self.message_user(request, f"{len(ids)} keys revoked.")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "organisation", "is_active", "created_at"]
    list_filter = ["is_active"]
    list_select_related = ["organisation"]
    search_fields = ["url", "organisation__name"]
    exclude = ["secret", "previous_secret"]
    readonly_fields = [
        "organisation",
        "url",
        "description",
        "topics",
        "created_at",
        "created_by",
        "previous_secret_expires_at",
    ]

    def has_add_permission(self, request):
        return False


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "response_status", "succeeded", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "topic",
        "endpoint",
        "status",
        "attempts",
        "last_response_status",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "is_test", "topic"]
    list_select_related = ["endpoint"]
    search_fields = ["=id", "topic", "endpoint__url"]
    inlines = [WebhookAttemptInline]
    actions = ["redeliver_now"]

    @admin.action(description="Deliver selected again now (fresh 3-day window)")
    def redeliver_now(self, request, queryset):
        from tradeassure.core.errors import DomainError
        from tradeassure.platform.api.services import webhook_redeliver

        queued = 0
        for delivery_id in queryset.values_list("id", flat=True):
            try:
                webhook_redeliver(actor=request.user, delivery_id=delivery_id)
                queued += 1
            except DomainError as error:
                self.message_user(request, f"#{delivery_id}: {error.message}", level="warning")
        self.message_user(request, f"{queued} deliveries queued again.")

    def has_change_permission(self, request, obj=None):
        return False
