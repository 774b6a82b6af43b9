from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import Invitation, Organisation, TeamEvent, User
from accounts.services import member_staff_changes_record


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
    list_display = ["name", "kind", "country", "inspection_approved", "created_at"]
    list_filter = ["kind", "inspection_approved", "country"]
    search_fields = ["name"]
    inlines = [MemberInline, InvitationInline]

    def save_formset(self, request, form, formset, change):
        before = {
            member_form.instance.pk: dict(member_form.initial)
            for member_form in formset.forms
            if member_form.instance.pk
        }
        super().save_formset(request, form, formset, change)
        if formset.model is User:
            for member in formset.queryset.model.objects.filter(pk__in=before):
                member_staff_changes_record(
                    actor=request.user, member=member, before=before[member.pk]
                )


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

    def save_model(self, request, obj, form, change):
        before = dict(form.initial) if change else {}
        super().save_model(request, obj, form, change)
        if change:
            member_staff_changes_record(actor=request.user, member=obj, before=before)

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
