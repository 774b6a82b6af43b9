from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.models import Device

from accounts.models import User


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))


class SignUpForm(forms.Form):
    role = forms.ChoiceField(
        label="I am",
        choices=[
            (User.Role.BUYER, "a buyer, placing protected orders"),
            (User.Role.SUPPLIER_STAFF, "a supplier, selling with Trade Assurance"),
        ],
        widget=forms.RadioSelect,
        initial=User.Role.BUYER,
    )
    organisation_name = forms.CharField(label="Company name", max_length=200)
    country = forms.CharField(
        label="Country (ISO code, e.g. US, CN)",
        max_length=2,
        min_length=2,
        widget=forms.TextInput(attrs={"class": "uppercase"}),
    )
    full_name = forms.CharField(label="Your name", max_length=150)
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, strip=False)

    def clean_country(self) -> str:
        country = self.cleaned_data["country"].upper()
        if not country.isalpha():
            raise forms.ValidationError("Use the two-letter ISO country code.")
        return country

    def clean_email(self) -> str:
        # A registered address is not an error here: saying so would tell anyone which
        # addresses have accounts (the view emails the owner instead).
        return self.cleaned_data["email"].lower()

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class StaffOTPAuthenticationForm(OTPAdminAuthenticationForm):
    """The admin log-in: email, password and the authenticator's code, in one step.

    django-otp asks the user to pick a device once the password is known (the list is empty
    before); staff have one authenticator, so when none is picked their only device is used.
    """

    def _chosen_device(self, user: User) -> Device | None:
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user, confirmed=True))
            if len(devices) == 1:
                device = devices[0]
        return device
