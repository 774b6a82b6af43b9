"""Team members: colleagues of an existing member, with a team role."""

from accounts.models import User
from tests.factories import UserFactory


def colleague_of(user: User, team_role: str) -> User:
    """Another active member of `user`'s organisation, with the same platform role."""
    return UserFactory(role=user.role, organisation=user.organisation, team_role=team_role)
