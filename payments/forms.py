import uuid
from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator

from tradeassure.core import clock
from tradeassure.core.money import CURRENCY_CHOICES, MINOR_UNITS


class CardForm(forms.Form):
    """The sandbox's card form (a real provider would host this page itself)."""

    card_number = forms.CharField(
        max_length=23,
        help_text="Sandbox: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined.",
        widget=forms.TextInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric"}),
    )
    expiry = forms.CharField(
        max_length=5,
        validators=[RegexValidator(r"^(0[1-9]|1[0-2])/\d\d$", "Use MM/YY.")],
        widget=forms.TextInput(attrs={"placeholder": "MM/YY", "autocomplete": "cc-exp"}),
    )
    cvc = forms.CharField(
        max_length=4,
        validators=[RegexValidator(r"^\d{3,4}$", "3 or 4 digits.")],
        widget=forms.TextInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric"}),
    )
    # A fresh key per rendered form: a double-clicked form is one attempt, charged once.
    attempt = forms.CharField(max_length=100, required=False, widget=forms.HiddenInput)

    @classmethod
    def fresh(cls) -> "CardForm":
        return cls(initial={"attempt": f"card-form:{uuid.uuid4()}"})

    def clean_expiry(self) -> str:
        """A card whose expiry month has passed is refused here, before it reaches a provider."""
        expiry = self.cleaned_data["expiry"]
        month, year = int(expiry[:2]), 2000 + int(expiry[3:])
        today = clock.now().date()
        if (year, month) < (today.year, today.month):
            raise forms.ValidationError("This card has expired.")
        return expiry

    def clean_card_number(self) -> str:
        number = "".join(self.cleaned_data["card_number"].split())
        if not number.isdigit():
            raise forms.ValidationError("Digits only.")
        return number


class TransferSimulateForm(forms.Form):
    """Sandbox: the buyer's bank transfer arrives (change the amount to try a wrong one)."""

    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES)

    def clean(self):
        data = super().clean()
        amount, currency = data.get("amount"), data.get("currency")
        if (
            amount is not None
            and currency
            and amount != amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]))
        ):
            self.add_error("amount", f"{currency} has {MINOR_UNITS[currency]} decimal places.")
        return data


class PayoutForm(forms.Form):
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, widget=forms.HiddenInput)
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    # A fresh key per rendered form: a double-submitted form pays out once.
    idempotency_key = forms.CharField(max_length=100, widget=forms.HiddenInput)

    @classmethod
    def for_balance(cls, balance) -> "PayoutForm":
        return cls(
            initial={
                "currency": balance.currency,
                "amount": balance.available,
                "idempotency_key": f"payout-form:{uuid.uuid4()}",
            },
            auto_id=f"id_payout_{balance.currency}_%s",
        )
