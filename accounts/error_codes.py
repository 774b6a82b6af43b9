"""Error codes the accounts app raises."""

from enum import StrEnum


class AccountErrorCode(StrEnum):
    ROLE = "role"  # sign-up with a role that cannot sign up itself
    TIME_ZONE = "time_zone"  # a time zone zoneinfo does not know
    # Teams (accounts.team, tradeassure.platform.members).
    ROLE_NOT_ALLOWED = "role_not_allowed"  # the member's team role lacks the capability
    TEAM_ROLE_WRONG_KIND = "team_role_wrong_kind"  # e.g. purchasing in a supplier organisation
    LAST_ADMIN = "last_admin"  # the organisation would have no active admin left
    INVITATION_INVALID = "invitation_invalid"  # unknown, revoked or already used link
    INVITATION_EXPIRED = "invitation_expired"
    INVITATION_EMAIL_REGISTERED = "invitation_email_registered"  # invitations make new users only
    INVITATIONS_RATE_LIMITED = "invitations_rate_limited"
