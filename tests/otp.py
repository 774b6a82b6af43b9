"""Staff in tests pass the admin's second factor the real way: a TOTP code from the device key."""

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.otp import totp_current_token, totp_device_enrol


def verify_staff_device(client: Client, user) -> TOTPDevice:
    """Give `user` a TOTP device, verify a code computed from its key, and mark the client's
    session verified with it (what django_otp.login does after the admin log-in form)."""
    device = totp_device_enrol(user=user, name="tests")
    # A code is good once per 30-second step; a test may log the same user in again.
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    device.refresh_from_db()
    assert device.verify_token(totp_current_token(device))
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


class StaffVerifyingClient(Client):
    """The test client; a staff member it logs in has also verified their TOTP device.

    Tests about the second factor itself use a plain `django.test.Client`.
    """

    def force_login(self, user, backend=None) -> None:
        super().force_login(user, backend)
        if user.is_staff:
            verify_staff_device(self, user)

    def login(self, **credentials) -> bool:
        logged_in = super().login(**credentials)
        if logged_in:
            from django.contrib.auth import get_user

            user = get_user(self._request_for_session())
            if user.is_staff:
                verify_staff_device(self, user)
        return logged_in

    def _request_for_session(self):
        from django.http import HttpRequest

        request = HttpRequest()
        request.session = self.session
        return request
