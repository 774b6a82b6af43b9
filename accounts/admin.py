from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import Invitation, Organisation, TeamEvent, User


class MemberInline(admin.TabularInline):
    """The organisation's people and their team roles (API keys' service members included,
    marked: they hold the key's role)."""

    model = User
    fk_name = "organisation"
    fields = ["email", "full_name", "role", "team_role", "is_active", "is_api_service"]
    readonly_fields = ["email", "full_name", "role", "is_api_service"]
    extra = 0
    can_delete = False  # never delete a member: orders, messages and events point at them
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # members join by invitation (Team page) or are added on the user admin


class InvitationInline(admin.TabularInline):
    model = Invitation
    fields = ["email", "team_role", "invited_by", "created_at", "expires_at", "accepted_at"]
    readonly_fields = [
        "email",
        "team_role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
    ]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "country", "created_at"]
    list_filter = ["kind", "country"]
    search_fields = ["name"]
    inlines = [MemberInline, InvitationInline]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = [
        "email",
        "full_name",
        "role",
        "team_role",
        "organisation",
        "is_api_service",
        "is_staff",
        "is_active",
    ]
    list_filter = ["role", "team_role", "is_api_service", "is_staff", "is_active"]
    list_select_related = ["organisation"]
    search_fields = ["email", "full_name", "organisation__name"]
    autocomplete_fields = ["organisation"]
    readonly_fields = ["is_api_service"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (
            "Profile",
            {"fields": ["full_name", "role", "organisation", "team_role", "is_api_service"]},
        ),
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
                "fields": [
                    "email",
                    "full_name",
                    "role",
                    "organisation",
                    "team_role",
                    "password1",
                    "password2",
                ],
            },
        )
    ]


@admin.register(TeamEvent)
class TeamEventAdmin(admin.ModelAdmin):
    """Who invited, changed or removed whom: read-only history."""

    list_display = ["created_at", "organisation", "kind", "member", "email", "actor", "to_role"]
    list_filter = ["kind"]
    list_select_related = ["organisation", "member", "actor"]
    search_fields = ["organisation__name", "email"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
