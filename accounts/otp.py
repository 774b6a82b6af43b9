"""Second factor for staff: TOTP devices (django-otp) that the admin asks for at log-in."""

import time

from django.db import transaction
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User


@transaction.atomic
def totp_device_enrol(
    *, user: User, name: str = "authenticator", replace: bool = False
) -> TOTPDevice:
    """The user's confirmed TOTP device called `name`, created if missing (a new key if `replace`).

    The operator hands the device's `config_url` (otpauth://…) to the user, who scans it into
    an authenticator app; from then on the admin log-in asks for the app's 6-digit code.
    """
    if replace:
        TOTPDevice.objects.filter(user=user, name=name).delete()
    device, _ = TOTPDevice.objects.get_or_create(user=user, name=name, defaults={"confirmed": True})
    return device


def totp_current_token(device: TOTPDevice) -> str:
    """The code the device's authenticator app shows now (demo and tests: the key is known)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"
