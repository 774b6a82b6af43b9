"""Reads about people and organisations that every app needs."""

from accounts.models import User


def organisation_members(*, organisation_id: int, role: str) -> list[User]:
    """The active users of an organisation who hold this role (the ones told about its work)."""
    return list(User.objects.filter(organisation_id=organisation_id, role=role, is_active=True))
