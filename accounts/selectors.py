"""Reads about people and organisations that every app needs."""

from collections.abc import Iterable

from django.db.models import QuerySet

from accounts.models import Organisation, User
from tradeassure.core.bulk import AnyOf


def organisation_members(*, organisation_id: int, role: str) -> list[User]:
    """The active users of an organisation who hold this role (the ones told about its work)."""
    return list(User.objects.filter(organisation_id=organisation_id, role=role, is_active=True))


def organisation_members_many(
    *, organisation_ids: Iterable[int], roles: Iterable[str]
) -> dict[tuple[int, str], list[User]]:
    """`organisation_members` for many organisations and roles with one query (a sweep's batch):
    {(organisation id, role): active users}, in key order."""
    found: dict[tuple[int, str], list[User]] = {}
    users = User.objects.filter(
        AnyOf("organisation_id", set(organisation_ids)), role__in=set(roles), is_active=True
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
