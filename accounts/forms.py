from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.models import Device

from accounts.models import User
from tradeassure.core.moments import DEFAULT_TIME_ZONE, is_time_zone, time_zone_names


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
    # Filled by static/js/timezone.js from the browser (Intl.DateTimeFormat); changeable later
    # on the profile page. The server only trusts a name zoneinfo knows.
    time_zone = forms.CharField(
        required=False,
        max_length=64,
        widget=forms.HiddenInput(attrs={"data-browser-time-zone": ""}),
    )

    def clean_time_zone(self) -> str:
        # A hidden field the visitor cannot correct: an unknown zone falls back to UTC.
        name = self.cleaned_data.get("time_zone", "").strip()
        return name if is_time_zone(name) else DEFAULT_TIME_ZONE

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


class ProfileForm(forms.ModelForm):
    """What a user may change about themselves: their name and the time zone they read in."""

    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=[(name, name.replace("_", " ")) for name in time_zone_names()],
        help_text="Every time on the pages and in your emails is shown in this zone.",
    )

    class Meta:
        model = User
        fields = ["full_name", "time_zone"]
        labels = {"full_name": "Your name"}
