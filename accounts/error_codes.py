"""Error codes the accounts app raises."""

from enum import StrEnum


class AccountErrorCode(StrEnum):
    ROLE = "role"  # sign-up with a role that cannot sign up itself
    TIME_ZONE = "time_zone"  # a time zone zoneinfo does not know
