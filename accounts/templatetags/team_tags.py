"""`{{ user|can:"pay" }}`: whether the user's team role has a capability (accounts.team)."""

from django import template

from accounts.team import Capability, team_allows

register = template.Library()


@register.filter
def can(user, capability: str) -> bool:
    return team_allows(user, Capability(capability))
