"""Writes behind an organisation's team: invitations, role changes, removals.

In the platform layer (not accounts) because the invitation email goes through the outbox.
Every function is keyword-only and atomic, checks the actor's team role through
`accounts.team`, writes one `TeamEvent` row per change, and raises a DomainError when a rule
refuses (nothing changed). Changes to who is an admin lock the organisation's row first, so
two admins removing or demoting each other at once cannot leave it without one: the second
waits, then sees the first's change.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.error_codes import AccountErrorCode
from accounts.models import Invitation, Organisation, TeamEvent, User
from accounts.team import Capability, team_require
from tradeassure.core import clock
from tradeassure.core.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from tradeassure.platform.events import outbox_enqueue

# The platform role each organisation kind's members hold (invited members get the same).
ROLE_FOR_KIND: dict[str, str] = {
    str(kind): role for role, kind in User.ORGANISATION_KIND_FOR_ROLE.items()
}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lock_organisation(organisation_id: int) -> Organisation:
    return Organisation.objects.select_for_update().get(pk=organisation_id)


def _fresh_admin(actor: User) -> int:
    """Re-read the actor under the organisation's lock: a member removed or demoted a moment
    ago (by another admin, concurrently) may no longer manage the team."""
    if not actor.is_authenticated or actor.organisation_id is None:
        raise NotAllowed("Only members of an organisation manage its team.")
    organisation = _lock_organisation(actor.organisation_id)
    fresh = User.objects.filter(pk=actor.pk, is_active=True).first()
    if fresh is None or fresh.organisation_id != organisation.pk or fresh.is_api_service:
        raise NotAllowed("You are no longer a member of this organisation.")
    team_require(fresh, Capability.MANAGE_MEMBERS)
    return organisation.pk


def _check_role_fits(organisation: Organisation, team_role: str) -> None:
    allowed = User.TEAM_ROLES_FOR_KIND.get(organisation.kind, ())
    if team_role not in allowed:
        labels = ", ".join(User.TeamRole(role).label.lower() for role in allowed)
        raise ValidationFailed(
            f"A {organisation.get_kind_display().lower()} has these roles: {labels}.",
            code=AccountErrorCode.TEAM_ROLE_WRONG_KIND,
            fields={"team_role": [f"Choose one of: {labels}."]},
        )


def _members(organisation_id: int):
    return User.objects.filter(organisation_id=organisation_id, is_api_service=False)


def _other_active_admins(organisation_id: int, member: User) -> int:
    return (
        _members(organisation_id)
        .filter(is_active=True, team_role=User.TeamRole.ADMIN)
        .exclude(pk=member.pk)
        .count()
    )


def _member_in(organisation_id: int, member_id: int) -> User:
    member = _members(organisation_id).select_for_update().filter(pk=member_id).first()
    if member is None or not member.is_active:
        raise NotFound("No such member in your organisation.")
    return member


def _record(
    *,
    organisation_id: int,
    kind: str,
    actor: User | None,
    member: User | None = None,
    email: str = "",
    from_role: str = "",
    to_role: str = "",
) -> TeamEvent:
    return TeamEvent.objects.create(
        organisation_id=organisation_id,
        kind=kind,
        actor=actor,
        member=member,
        email=email or (member.email if member else ""),
        from_role=from_role,
        to_role=to_role,
        created_at=clock.now(),
    )


# --- invitations ----------------------------------------------------------------------------
@transaction.atomic
def member_invite(*, actor: User, email: str, team_role: str) -> tuple[Invitation, str]:
    """Invite a colleague by email with a role; returns (invitation, the link's token).

    The link (emailed through the outbox) works once, for `TA_INVITATION_DAYS` days. Only new
    users can join by invitation: an address that already has an account is refused.
    Inviting the same address again revokes the earlier, unused invitation.
    """
    organisation_id = _fresh_admin(actor)
    organisation = Organisation.objects.get(pk=organisation_id)
    email = (email or "").strip().lower()
    if not email or "@" not in email or len(email) > 254:
        raise ValidationFailed(
            "Enter the colleague's email address.", fields={"email": ["Enter a valid email."]}
        )
    _check_role_fits(organisation, team_role)
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict(
            "This address already has a TradeAssure account; invitations are for new users only.",
            code=AccountErrorCode.INVITATION_EMAIL_REGISTERED,
            fields={"email": ["Already has an account."]},
        )
    now = clock.now()
    sent_today = Invitation.objects.filter(
        organisation_id=organisation_id, created_at__gte=now - timedelta(days=1)
    ).count()
    if sent_today >= settings.TEAMS["INVITATIONS_PER_DAY"]:
        raise Conflict(
            f"Your organisation sent {sent_today} invitations in the last 24 hours; "
            "try again tomorrow.",
            code=AccountErrorCode.INVITATIONS_RATE_LIMITED,
        )
    Invitation.objects.filter(
        organisation_id=organisation_id,
        email=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organisation_id=organisation_id,
        email=email,
        team_role=team_role,
        hashed_token=_digest(token),
        invited_by=actor,
        created_at=now,
        expires_at=now + settings.TEAMS["INVITATION_VALID_FOR"],
    )
    _record(
        organisation_id=organisation_id,
        kind=TeamEvent.Kind.INVITED,
        actor=actor,
        email=email,
        to_role=team_role,
    )
    link = f"{settings.SITE_URL.rstrip('/')}{reverse('team_join', args=[token])}"
    days = settings.TEAMS["INVITATION_VALID_FOR"].days
    outbox_enqueue(
        channel="email",
        payload={
            "to": email,
            "subject": f"[TradeAssure] {actor} invites you to {organisation.name}",
            "body": (
                f"{actor} ({actor.email}) invites you to join {organisation.name} on "
                f"TradeAssure as {invitation.get_team_role_display().lower()}.\n\n"
                f"Accept within {days} days (the link works once): {link}\n\n"
                "If you did not expect this, ignore this email."
            ),
        },
    )
    return invitation, token


@transaction.atomic
def invitation_revoke(*, actor: User, invitation_id: int) -> Invitation:
    organisation_id = _fresh_admin(actor)
    invitation = (
        Invitation.objects.select_for_update()
        .filter(pk=invitation_id, organisation_id=organisation_id)
        .first()
    )
    if invitation is None:
        raise NotFound("No such invitation in your organisation.")
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = clock.now()
        invitation.save(update_fields=["revoked_at"])
        _record(
            organisation_id=organisation_id,
            kind=TeamEvent.Kind.INVITATION_REVOKED,
            actor=actor,
            email=invitation.email,
            to_role=invitation.team_role,
        )
    return invitation


def invitation_for_token(*, token: str, lock: bool = False) -> Invitation:
    """The invitation this link names, if it can still be accepted; else the reason why not."""
    invitations = Invitation.objects.select_related("organisation", "invited_by")
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    invitation = invitations.filter(hashed_token=_digest(token or "")).first()
    if invitation is None or invitation.revoked_at is not None:
        raise NotFound(
            "This invitation link is not valid (it may have been replaced by a newer one).",
            code=AccountErrorCode.INVITATION_INVALID,
        )
    if invitation.accepted_at is not None:
        raise Conflict(
            "This invitation has already been used: log in instead.",
            code=AccountErrorCode.INVITATION_INVALID,
        )
    if invitation.expires_at <= clock.now():
        raise Conflict(
            "This invitation has expired: ask your colleague to invite you again.",
            code=AccountErrorCode.INVITATION_EXPIRED,
        )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, full_name: str, password: str) -> User:
    """Join the organisation: a new user with the invited address, role and a password."""
    invitation = invitation_for_token(token=token, lock=True)
    full_name = (full_name or "").strip()
    if not full_name or len(full_name) > 150:
        raise ValidationFailed("Enter your name.", fields={"full_name": ["1 to 150 characters."]})
    candidate = User(email=invitation.email, full_name=full_name)
    try:
        password_validation.validate_password(password, candidate)
    except ValidationError as error:
        raise ValidationFailed(
            "Choose a stronger password.", fields={"password": list(error.messages)}
        ) from error
    organisation = invitation.organisation
    # The role is re-checked: the organisation kind decides which team roles exist.
    _check_role_fits(organisation, invitation.team_role)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise Conflict(
            "This address already has a TradeAssure account: log in instead.",
            code=AccountErrorCode.INVITATION_EMAIL_REGISTERED,
        )
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=invitation.email,
                password=password,
                full_name=full_name,
                role=ROLE_FOR_KIND[organisation.kind],
                team_role=invitation.team_role,
                organisation=organisation,
            )
    except IntegrityError as error:  # the address was registered a moment ago
        raise Conflict(
            "This address already has a TradeAssure account: log in instead.",
            code=AccountErrorCode.INVITATION_EMAIL_REGISTERED,
        ) from error
    invitation.accepted_at = clock.now()
    invitation.accepted_user = user
    invitation.save(update_fields=["accepted_at", "accepted_user"])
    _record(
        organisation_id=organisation.pk,
        kind=TeamEvent.Kind.JOINED,
        actor=user,
        member=user,
        to_role=invitation.team_role,
    )
    return user


# --- members ---------------------------------------------------------------------------------
@transaction.atomic
def member_change_role(*, actor: User, member_id: int, team_role: str) -> User:
    """Give a member another role; the last active admin cannot be demoted."""
    organisation_id = _fresh_admin(actor)
    organisation = Organisation.objects.get(pk=organisation_id)
    _check_role_fits(organisation, team_role)
    member = _member_in(organisation_id, member_id)
    if member.team_role == team_role:
        return member
    if member.team_role == User.TeamRole.ADMIN and not _other_active_admins(
        organisation_id, member
    ):
        raise Conflict(
            "Your organisation needs at least one admin: make someone else admin first.",
            code=AccountErrorCode.LAST_ADMIN,
        )
    previous = member.team_role
    member.team_role = team_role
    member.save(update_fields=["team_role"])
    _record(
        organisation_id=organisation_id,
        kind=TeamEvent.Kind.ROLE_CHANGED,
        actor=actor,
        member=member,
        from_role=previous,
        to_role=team_role,
    )
    return member


@transaction.atomic
def member_remove(*, actor: User, member_id: int) -> User:
    """Take a member out of the organisation: deactivated (never deleted: their orders, messages
    and events keep pointing at them), so they can no longer log in. API keys keep working:
    each acts through its own service member. The last active admin cannot be removed."""
    organisation_id = _fresh_admin(actor)
    member = _member_in(organisation_id, member_id)
    if member.team_role == User.TeamRole.ADMIN and not _other_active_admins(
        organisation_id, member
    ):
        raise Conflict(
            "Your organisation needs at least one admin: make someone else admin first.",
            code=AccountErrorCode.LAST_ADMIN,
        )
    member.is_active = False
    member.save(update_fields=["is_active"])
    _record(
        organisation_id=organisation_id,
        kind=TeamEvent.Kind.REMOVED,
        actor=actor,
        member=member,
        from_role=member.team_role,
    )
    return member
