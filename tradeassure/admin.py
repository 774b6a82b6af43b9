from django.contrib import admin

from tradeassure.models import DomainEvent, Heartbeat, Notification, OutboxMessage, SystemAlert


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the system writes; staff read them and never edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
        from tradeassure import clock

        queryset.filter(resolved_at__isnull=True).update(resolved_at=clock.now())


admin.site.register(Heartbeat, ReadOnlyAdmin)
