from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import Organisation, User


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "country", "created_at"]
    list_filter = ["kind", "country"]
    search_fields = ["name"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "role", "organisation", "is_staff", "is_active"]
    list_filter = ["role", "is_staff", "is_active"]
    list_select_related = ["organisation"]
    search_fields = ["email", "full_name", "organisation__name"]
    autocomplete_fields = ["organisation"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name", "role", "organisation"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "full_name", "role", "organisation", "password1", "password2"],
            },
        )
    ]


# --- Partner API keys (owner: API helper) ----------------------------------------------------
from accounts.models import ApiKey  # noqa: E402


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
