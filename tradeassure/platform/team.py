"""The Team page (an organisation's members, for its admins) and the invitation's accept page.

Thin views over `tradeassure.platform.members` (writes) and `accounts.selectors` (reads); in
the platform layer, next to the Developers page, because the invitation email uses the outbox.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth import login, password_validation
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from accounts import selectors
from accounts.models import User
from accounts.team import REFUSALS, ROLE_TABLE, Capability, team_allows
from tradeassure.core.errors import DomainError
from tradeassure.platform import members


def _role_choices(organisation_kind: str) -> list[tuple[str, str]]:
    roles = User.TEAM_ROLES_FOR_KIND.get(organisation_kind, (User.TeamRole.ADMIN,))
    return [(role, User.TeamRole(role).label) for role in roles]


class InviteForm(forms.Form):
    email = forms.EmailField(label="Colleague's email")
    team_role = forms.ChoiceField(label="Role")

    def __init__(self, *args, organisation_kind: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["team_role"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _role_choices(organisation_kind)


class RoleForm(forms.Form):
    team_role = forms.ChoiceField(choices=User.TeamRole.choices)


class JoinForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, email: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = User(email=self.email, full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


def _team_admin(request) -> User:
    user = request.user
    if (
        user.organisation_id is None
        or user.is_api_service
        or user.role
        not in (
            User.Role.BUYER,
            User.Role.SUPPLIER_STAFF,
        )
    ):
        raise PermissionDenied("The Team page is for buyer and supplier companies.")
    if not team_allows(user, Capability.MANAGE_MEMBERS):
        raise PermissionDenied(REFUSALS[Capability.MANAGE_MEMBERS])
    return user


@login_required
def team_home(request, invite_form: InviteForm | None = None, status: int = 200):
    user = _team_admin(request)
    organisation = user.organisation
    organisation_id = int(user.organisation_id or 0)
    kind = organisation.kind if organisation else ""
    return render(
        request,
        "accounts/team.html",
        {
            "organisation": organisation,
            "members": list(selectors.team_members(organisation_id=organisation_id)),
            "invitations": list(
                selectors.team_invitations_pending(organisation_id=organisation_id)
            ),
            "history": list(selectors.team_history(organisation_id=organisation_id)[:30]),
            "invite_form": invite_form or InviteForm(organisation_kind=kind),
            "role_choices": _role_choices(kind),
            "role_table": [
                (capability, covers, sorted(allowed))
                for capability, (covers, allowed) in ROLE_TABLE.items()
            ],
        },
        status=status,
    )


@login_required
@require_POST
def team_invite(request):
    user = _team_admin(request)
    form = InviteForm(request.POST, organisation_kind=user.organisation.kind)
    if not form.is_valid():
        return team_home(request, invite_form=form, status=400)
    try:
        invitation, _token = members.member_invite(actor=user, **form.cleaned_data)
    except DomainError as error:
        for field, errors in error.fields.items():
            if field in form.fields:
                for message in errors:
                    form.add_error(field, message)
        form.add_error(None, error.message)
        return team_home(request, invite_form=form, status=error.status)
    messages.success(
        request,
        f"Invitation sent to {invitation.email} as {invitation.get_team_role_display().lower()}; "
        f"the link works once, until {invitation.expires_at:%Y-%m-%d %H:%M %Z}.",
    )
    return redirect("team")


@login_required
@require_POST
def team_member_role(request, pk: int):
    user = _team_admin(request)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("team")
    try:
        member = members.member_change_role(
            actor=user, member_id=pk, team_role=form.cleaned_data["team_role"]
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{member} is now {member.get_team_role_display().lower()}.")
    return redirect("team")


@login_required
@require_POST
def team_member_remove(request, pk: int):
    user = _team_admin(request)
    try:
        member = members.member_remove(actor=user, member_id=pk)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("team")
    messages.success(request, f"{member} was removed; they can no longer log in.")
    if member.pk == user.pk:
        return redirect("login")
    return redirect("team")


@login_required
@require_POST
def team_invitation_revoke(request, pk: int):
    user = _team_admin(request)
    try:
        invitation = members.invitation_revoke(actor=user, invitation_id=pk)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Invitation to {invitation.email} revoked.")
    return redirect("team")


def team_join(request, token: str):
    """The invitation link: a new user sets their name and password and joins the organisation."""
    if request.user.is_authenticated:
        return render(
            request,
            "accounts/team_join.html",
            {"refusal": "Log out first: an invitation creates a new account."},
            status=409,
        )
    try:
        invitation = members.invitation_for_token(token=token)
    except DomainError as error:
        return render(
            request, "accounts/team_join.html", {"refusal": error.message}, status=error.status
        )
    form = JoinForm(request.POST or None, email=invitation.email)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                user = members.invitation_accept(token=token, **form.cleaned_data)
            except DomainError as error:
                form.add_error(None, error.message)
                status = error.status
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, f"Welcome to {invitation.organisation}, {user}.")
                return redirect("dashboard")
    return render(
        request,
        "accounts/team_join.html",
        {"invitation": invitation, "form": form},
        status=status,
    )


urlpatterns = [
    path("", team_home, name="team"),
    path("invite/", team_invite, name="team_invite"),
    path("members/<int:pk>/role/", team_member_role, name="team_member_role"),
    path("members/<int:pk>/remove/", team_member_remove, name="team_member_remove"),
    path("invitations/<int:pk>/revoke/", team_invitation_revoke, name="team_invitation_revoke"),
    path("join/<str:token>/", team_join, name="team_join"),
]
