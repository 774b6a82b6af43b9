from django.db import transaction

from accounts.error_codes import AccountErrorCode
from accounts.models import Organisation, User
from tradeassure.core.errors import ValidationFailed

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
) -> User:
    """Open an account for a new buyer or supplier company, with its first user."""
    if role not in SELF_SERVICE_ROLES:
        raise ValidationFailed(
            "Only buyers and suppliers can sign up themselves.", code=AccountErrorCode.ROLE
        )
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationFailed(
            "An account with this email already exists.", fields={"email": ["Already registered."]}
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
    )
