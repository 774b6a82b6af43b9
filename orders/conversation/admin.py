"""Staff read order conversations and hide a message with a reason (recorded on the row).

Nothing else changes a message: the admin is read-only and the hide view calls the service."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from orders.conversation import services
from orders.conversation.models import OrderMessage, OrderMessageAttachment
from tradeassure.core.errors import DomainError
from tradeassure.platform.admin import ReadOnlyAdminMixin


class OrderMessageAttachmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderMessageAttachment
    fields = readonly_fields = ("original_name", "content_type", "size")
    extra = 0


@admin.register(OrderMessage)
class OrderMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "order", "author_party", "author", "created_at", "hidden_at")
    list_filter = ("author_party",)
    search_fields = ("body", "order__id")
    list_select_related = ("order", "author")
    readonly_fields = (
        "order",
        "author",
        "author_party",
        "author_organisation",
        "body",
        "created_at",
        "hidden_at",
        "hidden_by",
        "hidden_reason",
    )
    inlines = [OrderMessageAttachmentInline]

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/hide/", wrap(self.hide_view), name="orders_ordermessage_hide"),
            *super().get_urls(),
        ]

    def hide_view(self, request, pk):
        """POST `reason` (and an optional same-site `next`): hide the message, say so, go back."""
        if not request.user.has_perm(services.HIDE_PERMISSION):
            raise PermissionDenied
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            back = reverse("admin:orders_ordermessage_change", args=[pk])
        if request.method == "POST":
            try:
                services.order_message_hide(
                    message=int(pk), actor=request.user, reason=request.POST.get("reason", "")
                )
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, "Message hidden from the parties.", messages.SUCCESS)
        return HttpResponseRedirect(back)
