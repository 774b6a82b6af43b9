"""Browser forms for orders. They parse input into `ContractTerms`; the services decide the rules."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import cast

from django import forms
from django.conf import settings

from orders.models import Coverage, Incoterm, ShipmentDocument, ShippingMethod
from orders.terms import ContractTerms, LineItemTerms
from suppliers.models import Product, Supplier
from tradeassure.core import clock
from tradeassure.core.money import CURRENCY_CHOICES

MONEY_FIELDS = ("currency", "coverage", "shipping_fee", "initial_payment_amount")
MONEY_ITEM_FIELDS = ("product", "quantity", "unit", "unit_price")


def end_of_day(day: date) -> datetime:
    """A contract deadline date means "by the end of that day" (UTC)."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


class DateInput(forms.DateInput):
    input_type = "date"


class ContractForm(forms.Form):
    currency = forms.ChoiceField(choices=CURRENCY_CHOICES, initial="USD")
    coverage = forms.ChoiceField(
        choices=Coverage.choices,
        initial=Coverage.POST_DELIVERY,
        widget=forms.RadioSelect,
        help_text="Post-delivery keeps your money in escrow until you accept the goods.",
    )
    shipment_deadline = forms.DateField(
        widget=DateInput, help_text="The supplier must ship by the end of this day (UTC)."
    )
    incoterm = forms.ChoiceField(choices=Incoterm.choices, initial=Incoterm.FOB)
    destination = forms.CharField(max_length=200, help_text="Port or delivery address.")
    shipping_method = forms.ChoiceField(choices=ShippingMethod.choices)
    shipping_fee = forms.DecimalField(min_value=0, max_digits=14, decimal_places=2, initial=0)
    initial_payment_amount = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=14,
        decimal_places=2,
        help_text="Paid into escrow after the supplier confirms; the rest is the balance, due "
        "before shipment (it may be 0).",
    )
    packaging = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    customisation = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args, money_frozen: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if money_frozen:
            for name in MONEY_FIELDS:
                self.fields[name].disabled = True
                self.fields[name].help_text = "Frozen: money is held for this order."

    def clean_shipment_deadline(self) -> date:
        day = self.cleaned_data["shipment_deadline"]
        today = clock.now().date()
        ahead = settings.TRADE_ASSURANCE["MAX_SHIPMENT_DEADLINE_AHEAD"]
        if day < today:
            raise forms.ValidationError("The shipment deadline must be in the future.")
        if day > (clock.now() + ahead).date():
            raise forms.ValidationError(f"At most {ahead.days} days ahead.")
        return day


class OrderCreateForm(ContractForm):
    purchase_order_number = forms.CharField(label="Your PO number", max_length=40, required=False)
    note = forms.CharField(
        label="Message to the supplier",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
    )


class ProposalForm(ContractForm):
    note = forms.CharField(
        label="Why the change",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=True,
        help_text="The other party sees this with the differences.",
    )


class LineItemForm(forms.Form):
    product = forms.ModelChoiceField(
        queryset=Product.objects.none(),
        required=False,
        empty_label="— free text —",
        help_text="From the supplier's catalogue, or leave empty and describe the goods.",
    )
    description = forms.CharField(max_length=200, required=False)
    specifications = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=10000
    )
    quality_requirements = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Measurable: what an inspector can check (sizes, tolerances, tests).",
    )
    quantity = forms.DecimalField(min_value=Decimal("0.001"), max_digits=12, decimal_places=3)
    unit = forms.CharField(max_length=30, required=False, help_text="Default: the product's unit.")
    unit_price = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=14,
        decimal_places=2,
        required=False,
        help_text="Default: the catalogue price.",
    )

    def __init__(
        self, *args, supplier: Supplier | None = None, money_frozen: bool = False, **kwargs
    ):
        super().__init__(*args, **kwargs)
        if supplier is not None:
            # Declared above as a ModelChoiceField; Form.fields is typed dict[str, Field].
            product_field = cast(forms.ModelChoiceField, self.fields["product"])
            product_field.queryset = Product.objects.filter(
                supplier=supplier, is_active=True
            ).order_by("name")
        if money_frozen:
            for name in MONEY_ITEM_FIELDS:
                self.fields[name].disabled = True

    def clean(self):
        data = super().clean()
        product = data.get("product")
        if product is None:
            for name in ("description", "unit", "unit_price"):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, "Required for a free-text line.")
        return data


class BaseLineItemFormSet(forms.BaseFormSet):
    def __init__(self, *args, supplier=None, money_frozen=False, **kwargs):
        self.supplier = supplier
        self.money_frozen = money_frozen
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {"supplier": self.supplier, "money_frozen": self.money_frozen}

    @property
    def empty_form(self):
        form = self.form(
            auto_id=self.auto_id,
            prefix=self.add_prefix("__prefix__"),
            empty_permitted=True,
            use_required_attribute=False,
            supplier=self.supplier,
            renderer=self.renderer,
        )
        self.add_fields(form, None)
        return form


LineItemFormSet = forms.formset_factory(
    LineItemForm,
    formset=BaseLineItemFormSet,
    extra=0,
    min_num=1,
    validate_min=True,
    max_num=50,
    validate_max=True,
    can_delete=True,
)


def line_items_formset(data=None, *, supplier, initial=None, money_frozen=False):
    formset = LineItemFormSet(
        data, prefix="items", initial=initial, supplier=supplier, money_frozen=money_frozen
    )
    if money_frozen:
        formset.can_delete = False
        formset.extra = 0
    return formset


def terms_from_forms(form: ContractForm, formset, *, currency_errors: list[str]) -> ContractTerms:
    """Build the contract from valid forms, filling catalogue defaults for product lines."""
    data = form.cleaned_data
    currency = data["currency"]
    items = []
    for position, line in enumerate(
        (f for f in formset.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")), start=1
    ):
        values = line.cleaned_data
        product = values.get("product")
        unit_price = values.get("unit_price")
        if product is not None and unit_price is None:
            if product.currency == currency:
                unit_price = product.unit_price
            else:
                currency_errors.append(
                    f"Line {position}: {product.name} is priced in {product.currency}; "
                    f"enter a unit price in {currency}."
                )
                unit_price = Decimal(0)
        items.append(
            LineItemTerms(
                description=values.get("description") or (product.name if product else ""),
                quality_requirements=values["quality_requirements"],
                quantity=values["quantity"],
                unit=values.get("unit") or (product.unit if product else ""),
                unit_price=unit_price or Decimal(0),
                specifications=values.get("specifications")
                or (product.specifications if product else ""),
                product_id=product.pk if product else None,
            )
        )
    return ContractTerms(
        currency=currency,
        coverage=data["coverage"],
        items=items,
        shipment_deadline=end_of_day(data["shipment_deadline"]),
        incoterm=data["incoterm"],
        destination=data["destination"],
        shipping_method=data["shipping_method"],
        shipping_fee=data["shipping_fee"] or Decimal(0),
        initial_payment_amount=data["initial_payment_amount"],
        packaging=data.get("packaging", ""),
        customisation=data.get("customisation", ""),
    )


def initial_from_terms(terms: ContractTerms) -> tuple[dict, list[dict]]:
    contract = {
        "currency": terms.currency,
        "coverage": terms.coverage,
        "shipment_deadline": terms.shipment_deadline.date(),
        "incoterm": terms.incoterm,
        "destination": terms.destination,
        "shipping_method": terms.shipping_method,
        "shipping_fee": terms.shipping_fee,
        "initial_payment_amount": terms.initial_payment_amount,
        "packaging": terms.packaging,
        "customisation": terms.customisation,
    }
    items = [
        {
            "product": item.product_id,
            "description": item.description,
            "specifications": item.specifications,
            "quality_requirements": item.quality_requirements,
            "quantity": item.quantity,
            "unit": item.unit,
            "unit_price": item.unit_price,
        }
        for item in terms.items
    ]
    return contract, items


class CancelForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=1000
    )


class NoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=1000
    )


class PayForm(forms.Form):
    # Rendered bare beside its button: the accessible name comes from aria-label.
    method = forms.ChoiceField(
        label="Payment method",
        choices=[("card", "Card"), ("bank_transfer", "Bank transfer (T/T)")],
        initial="card",
        widget=forms.Select(attrs={"aria-label": "Payment method"}),
    )


class ExtendShipmentDeadlineForm(forms.Form):
    new_deadline = forms.DateField(widget=DateInput, label="New shipment deadline")
    note = forms.CharField(required=False, max_length=1000)

    def clean_new_deadline(self) -> datetime:
        return end_of_day(self.cleaned_data["new_deadline"])


class RateForm(forms.Form):
    score = forms.TypedChoiceField(
        choices=[(n, f"{n} ★") for n in range(5, 0, -1)], coerce=int, label="Rating"
    )
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000
    )


class ShipmentForm(forms.Form):
    carrier = forms.CharField(max_length=100)
    tracking_number = forms.CharField(max_length=100)
    shipped_on = forms.DateField(widget=DateInput, label="Ship date")
    commercial_invoice = forms.FileField(label=ShipmentDocument.Kind.COMMERCIAL_INVOICE.label)
    bill_of_lading = forms.FileField(label=ShipmentDocument.Kind.BILL_OF_LADING.label)
    packing_list = forms.FileField(label=ShipmentDocument.Kind.PACKING_LIST.label)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["shipped_on"].initial = clock.now().date()
        for name in ("commercial_invoice", "bill_of_lading", "packing_list"):
            self.fields[name].help_text = "PDF, PNG, JPEG or WebP."
            self.fields[name].widget.attrs["accept"] = ".pdf,.png,.jpg,.jpeg,.webp"


def default_deadline(product: Product | None) -> date:
    lead = product.lead_time_days if product else 30
    ahead = settings.TRADE_ASSURANCE["MAX_SHIPMENT_DEADLINE_AHEAD"]
    return min(clock.now().date() + timedelta(days=lead + 7), (clock.now() + ahead).date())
