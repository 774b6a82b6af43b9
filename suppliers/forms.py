"""Browser forms for suppliers: input shape only; the rules live in services."""

from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator

from suppliers.models import Category, Supplier, TradeAssuranceStatus, VerificationDocument
from tradeassure.core import clock

COUNTRY_CODE = RegexValidator(r"^[A-Za-z]{2}$", "Use the two-letter ISO country code, e.g. CN.")


class DirectoryFilterForm(forms.Form):
    q = forms.CharField(
        label="Search", required=False, max_length=100, help_text="Company or product name"
    )
    country = forms.CharField(required=False, max_length=2, validators=[COUNTRY_CODE])
    category = forms.ModelChoiceField(
        queryset=Category.objects.all(),
        required=False,
        to_field_name="slug",
        empty_label="Any category",
        widget=forms.Select(attrs={"aria-label": "Category"}),
    )
    trade_assurance = forms.ChoiceField(
        label="Trade Assurance",
        required=False,
        choices=[
            ("", "With or without Trade Assurance"),
            ("yes", "Trade Assurance only"),
            ("no", "Without Trade Assurance"),
        ],
        widget=forms.Select(attrs={"aria-label": "Trade Assurance"}),
    )


class SupplierProfileForm(forms.Form):
    legal_name = forms.CharField(max_length=200)
    country = forms.CharField(
        max_length=2, validators=[COUNTRY_CODE], help_text="Two-letter ISO code, e.g. CN or MY"
    )
    year_established = forms.IntegerField(
        required=False,
        validators=[MinValueValidator(1800), MaxValueValidator(clock.now().year + 1)],
    )
    declared_capacity = forms.IntegerField(
        label="Production capacity (units per month)",
        min_value=0,
        max_value=2_000_000_000,
        initial=0,
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    categories = forms.ModelMultipleChoiceField(
        queryset=Category.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def clean_country(self) -> str:
        return self.cleaned_data["country"].upper()

    @classmethod
    def initial_for(cls, supplier: Supplier) -> dict:
        return {
            "legal_name": supplier.legal_name,
            "country": supplier.country,
            "year_established": supplier.year_established,
            "declared_capacity": supplier.declared_capacity,
            "description": supplier.description,
            "categories": list(supplier.categories.all()),
        }


class ProductForm(forms.Form):
    name = forms.CharField(max_length=200)
    category = forms.ModelChoiceField(queryset=Category.objects.all(), required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    specifications = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=10000,
        help_text="Measurable specifications buyers can put in a contract",
    )
    unit_price = forms.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0.01"), max_value=Decimal("1e11")
    )
    currency = forms.ChoiceField(choices=[(c, c) for c in settings.SUPPORTED_CURRENCIES])
    unit = forms.CharField(max_length=30, initial="pcs")
    minimum_order_quantity = forms.IntegerField(min_value=1, max_value=2_000_000_000, initial=1)
    lead_time_days = forms.IntegerField(
        label="Lead time (days)", min_value=1, max_value=365, initial=30
    )
    image = forms.FileField(required=False, help_text="PNG, JPEG or WebP")

    @classmethod
    def initial_for(cls, product) -> dict:
        return {
            field: getattr(product, field)
            for field in [
                "name",
                "category",
                "description",
                "specifications",
                "unit_price",
                "currency",
                "unit",
                "minimum_order_quantity",
                "lead_time_days",
            ]
        }


class DocumentUploadForm(forms.Form):
    kind = forms.ChoiceField(label="Document type", choices=VerificationDocument.Kind.choices)
    file = forms.FileField(help_text="PDF, PNG, JPEG or WebP")


# --- Admin intermediate forms ------------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Shown to the supplier and kept in the status history.",
    )


class VerificationDecisionForm(ReasonForm):
    verified_capacity = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=2_000_000_000,
        help_text="Units per month as verified (optional).",
    )


class MembershipForm(ReasonForm):
    membership = forms.ChoiceField(choices=Supplier.Membership.choices)
    expires_on = forms.DateField(required=False, help_text="Required for gold (YYYY-MM-DD).")

    def clean(self):
        data = super().clean()
        if data.get("membership") == Supplier.Membership.GOLD and not data.get("expires_on"):
            self.add_error("expires_on", "Gold membership needs an expiry date.")
        return data


TA_STATUS_BADGE = {
    TradeAssuranceStatus.APPROVED: "ok",
    TradeAssuranceStatus.PENDING: "warn",
    TradeAssuranceStatus.SUSPENDED: "bad",
    TradeAssuranceStatus.REJECTED: "bad",
    TradeAssuranceStatus.NONE: "",
}
