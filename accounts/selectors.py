"""Reads about people and organisations that every app needs."""

from collections.abc import Iterable

from django.db.models import QuerySet

from accounts.models import Invitation, Organisation, TeamEvent, User
from tradeassure.core import clock
from tradeassure.core.bulk import AnyOf


def organisation_members(*, organisation_id: int, role: str) -> list[User]:
    """The active users of an organisation who hold this role (the ones told about its work):
    every team role, so nobody stops hearing about the work; never an API key's service
    member."""
    return list(
        User.objects.filter(
            organisation_id=organisation_id, role=role, is_active=True, is_api_service=False
        )
    )


def team_members(*, organisation_id: int) -> QuerySet[User]:
    """The people of an organisation, active first (the Members page; no service members)."""
    return User.objects.filter(organisation_id=organisation_id, is_api_service=False).order_by(
        "-is_active", "email"
    )


def team_invitations_pending(*, organisation_id: int) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organisation_id=organisation_id,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=clock.now(),
    ).select_related("invited_by")


def team_history(*, organisation_id: int) -> QuerySet[TeamEvent]:
    return TeamEvent.objects.filter(organisation_id=organisation_id).select_related(
        "actor", "member"
    )


def organisation_members_many(
    *, organisation_ids: Iterable[int], roles: Iterable[str]
) -> dict[tuple[int, str], list[User]]:
    """`organisation_members` for many organisations and roles with one query (a sweep's batch):
    {(organisation id, role): active users}, in key order."""
    found: dict[tuple[int, str], list[User]] = {}
    users = User.objects.filter(
        AnyOf("organisation_id", set(organisation_ids)),
        role__in=set(roles),
        is_active=True,
        is_api_service=False,
    ).order_by("pk")
    for user in users:
        if user.organisation_id is not None:
            found.setdefault((user.organisation_id, user.role), []).append(user)
    return found


def inspection_companies_approved() -> QuerySet[Organisation]:
    """The inspection companies staff approved: the only ones buyers and mediators may pick."""
    return Organisation.objects.filter(
        kind=Organisation.Kind.INSPECTION, inspection_approved=True
    ).order_by("name")
