"""What each team role may do: ONE explicit table, read by every service, page and API key.

A member of a buyer or supplier organisation holds one team role (`User.team_role`). Each
capability below names the team roles that have it; services call `team_require` before they
act (a `RoleNotAllowed`, 403 `role_not_allowed` in the API, when the role lacks it) and pages
call `team_allows` to hide what the member may not do. The README's role table is generated
from `ROLE_TABLE` (tests/accounts/test_team_readme.py compares them).

The admin has every capability: a small company's only user is its admin and must be able to
do everything. Reading an order (its status, contract, timeline) is open to every member;
the table decides who acts and who sees the money.
"""

from enum import StrEnum

from accounts.error_codes import AccountErrorCode
from accounts.models import User
from tradeassure.core.errors import NotAllowed

R = User.TeamRole


class Capability(StrEnum):
    TRADE = "trade"
    TALK = "talk"
    DISPUTE = "dispute"
    PAY = "pay"
    SEE_MONEY = "see_money"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_INTEGRATIONS = "manage_integrations"


# capability → (what it covers, the team roles that have it)
ROLE_TABLE: dict[Capability, tuple[str, frozenset[str]]] = {
    Capability.TRADE: (
        "Place, confirm, amend, cancel, ship and receive orders; rate them",
        frozenset({R.ADMIN, R.PURCHASING, R.SALES}),
    ),
    Capability.TALK: (
        "Write in the order conversation",
        frozenset({R.ADMIN, R.PURCHASING, R.SALES}),
    ),
    Capability.DISPUTE: (
        "File, answer and settle disputes; send evidence; book inspections",
        frozenset({R.ADMIN, R.PURCHASING, R.SALES}),
    ),
    Capability.PAY: (
        "Pay an order (initial payment, balance); request payouts",
        frozenset({R.ADMIN, R.FINANCE}),
    ),
    Capability.SEE_MONEY: (
        "See payments, escrow, the Money page, statements and payouts",
        frozenset({R.ADMIN, R.FINANCE}),
    ),
    Capability.MANAGE_MEMBERS: (
        "Invite members, change their roles, remove them",
        frozenset({R.ADMIN}),
    ),
    Capability.MANAGE_INTEGRATIONS: (
        "Create and revoke API keys, manage webhooks",
        frozenset({R.ADMIN}),
    ),
}

REFUSALS: dict[Capability, str] = {
    Capability.TRADE: "Only purchasing, sales or an admin of your organisation can do this.",
    Capability.TALK: "Only purchasing, sales or an admin of your organisation can write here.",
    Capability.DISPUTE: "Only purchasing, sales or an admin of your organisation handle disputes.",
    Capability.PAY: "Only finance or an admin of your organisation can move money.",
    Capability.SEE_MONEY: "Only finance or an admin of your organisation can see the money.",
    Capability.MANAGE_MEMBERS: "Only an admin of your organisation manages its members.",
    Capability.MANAGE_INTEGRATIONS: "Only an admin of your organisation manages API keys.",
}


class RoleNotAllowed(NotAllowed):
    """The member's team role lacks the capability (403 `role_not_allowed`). Nothing changed."""

    code: str = AccountErrorCode.ROLE_NOT_ALLOWED
    title = "Your role in your organisation may not do this."


def team_roles_with(capability: Capability) -> frozenset[str]:
    return ROLE_TABLE[capability][1]


def team_allows(user: object, capability: Capability) -> bool:
    """Whether this user's team role has the capability.

    Only members of an organisation have a team role; staff (no organisation) are not limited
    here: whether they may act at all is the object's own rule (the lifecycle's parties).
    """
    if not getattr(user, "is_authenticated", False):
        return False
    if getattr(user, "organisation_id", None) is None:
        return True
    return getattr(user, "team_role", "") in ROLE_TABLE[capability][1]


def team_require(user: object, capability: Capability) -> None:
    """Refuse with `RoleNotAllowed` unless the user's team role has the capability."""
    if not team_allows(user, capability):
        raise RoleNotAllowed(REFUSALS[capability])


def team_capabilities(user: object) -> frozenset[Capability]:
    """Every capability the user has (pages use it to show or hide buttons, one lookup)."""
    return frozenset(c for c in Capability if team_allows(user, c))


def readme_table() -> str:
    """The README's role table (Markdown), generated from ROLE_TABLE."""
    roles = [R.ADMIN, R.PURCHASING, R.SALES, R.FINANCE]
    header = "| Capability | What it covers | " + " | ".join(r.label for r in roles) + " |"
    rule = "|---|---|" + "---|" * len(roles)
    lines = [header, rule]
    for capability, (covers, allowed) in ROLE_TABLE.items():
        cells = " | ".join("✓" if role in allowed else "—" for role in roles)
        lines.append(f"| `{capability}` | {covers} | {cells} |")
    return "\n".join(lines)
