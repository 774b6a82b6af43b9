from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from accounts.error_codes import AccountErrorCode
from accounts.models import Organisation, TeamEvent, User
from tradeassure.core import clock
from tradeassure.core.errors import ValidationFailed
from tradeassure.core.moments import DEFAULT_TIME_ZONE, is_time_zone

SELF_SERVICE_ROLES = {User.Role.BUYER, User.Role.SUPPLIER_STAFF}


@transaction.atomic
def account_sign_up(
    *,
    email: str,
    password: str,
    full_name: str,
    role: str,
    organisation_name: str,
    country: str = "",
    time_zone: str = DEFAULT_TIME_ZONE,
) -> User:
    """Open an account for a new buyer or supplier company, with its first user."""
    if role not in SELF_SERVICE_ROLES:
        raise ValidationFailed(
            "Only buyers and suppliers can sign up themselves.", code=AccountErrorCode.ROLE
        )
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationFailed(
            "An account with this email already exists.",
            code="email_registered",
            fields={"email": ["Already registered."]},
        )
    organisation = Organisation.objects.create(
        name=organisation_name.strip(),
        kind=User.ORGANISATION_KIND_FOR_ROLE[role],
        country=country.upper(),
    )
    return User.objects.create_user(
        email=email,
        password=password,
        full_name=full_name.strip(),
        role=role,
        organisation=organisation,
        time_zone=time_zone if is_time_zone(time_zone) else DEFAULT_TIME_ZONE,
    )


def account_sign_up_registered_notify(*, email: str) -> None:
    """Someone signed up with an address that has an account: tell its owner, by email only.

    The page answers as for any sign-up that needs the inbox, so the form does not reveal
    which addresses are registered.
    """
    site = settings.SITE_URL.rstrip("/")
    send_mail(
        subject="You already have a TradeAssure account",
        message=(
            "Someone (perhaps you) tried to sign up to TradeAssure with this address, which "
            "already has an account. No new account was created.\n\n"
            f"Log in: {site}{reverse('login')}\n"
            f"Forgot your password? Reset it: {site}{reverse('password_reset')}\n\n"
            "If this was not you, you can ignore this email."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    )


def account_profile_update(*, user: User, full_name: str, time_zone: str) -> User:
    """Change the user's own name and time zone (pages and emails follow the zone)."""
    if not is_time_zone(time_zone):
        raise ValidationFailed(
            "Choose a time zone from the list.",
            code=AccountErrorCode.TIME_ZONE,
            fields={"time_zone": ["Unknown time zone."]},
        )
    user.full_name = full_name.strip()
    user.time_zone = time_zone
    user.save(update_fields=["full_name", "time_zone"])
    return user


def member_staff_changes_record(
    *, actor: User, member: User, before: dict[str, object]
) -> list[TeamEvent]:
    """Staff changed a member in the admin (a role, or active/inactive): record who did it.

    The admin is staff's override (e.g. restoring a company's only admin), so the last-admin
    rule of the Team page does not apply there; the change is still in the team's history.
    """
    if member.organisation_id is None:
        return []
    events = []
    now = clock.now()
    if before.get("team_role") not in (None, member.team_role):
        events.append(
            TeamEvent(
                organisation_id=member.organisation_id,
                kind=TeamEvent.Kind.ROLE_CHANGED,
                actor=actor,
                member=member,
                email=member.email,
                from_role=str(before["team_role"]),
                to_role=member.team_role,
                created_at=now,
            )
        )
    if before.get("is_active") is True and not member.is_active:
        events.append(
            TeamEvent(
                organisation_id=member.organisation_id,
                kind=TeamEvent.Kind.REMOVED,
                actor=actor,
                member=member,
                email=member.email,
                from_role=member.team_role,
                created_at=now,
            )
        )
    return TeamEvent.objects.bulk_create(events)
