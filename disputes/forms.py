"""Browser and admin forms. They parse input only; the services decide what is allowed."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django import forms

from accounts.selectors import inspection_companies_approved
from disputes.models import REQUESTABLE_REMEDIES, DisputeParty, Remedy
from disputes.terms import OutcomeTerms
from orders.inspection.forms import InspectionFeeForm, InspectionReportForm  # noqa: F401 (shared)
from tradeassure.core import clock
from tradeassure.core.forms import MultipleFileField

FILES_HELP = "PDF, PNG, JPEG or WebP; checked by content; up to 10 MB each."


def _end_of_day(day) -> datetime | None:
    """A date picked in a form means the end of that day, UTC."""
    if day is None:
        return None
    return datetime.combine(day, time(23, 59), tzinfo=UTC)


class _OwnIds:
    """The dispute page shows several forms with the same field names (message, files): each
    form's ids get its own prefix, so every label points at its own field."""

    id_prefix = ""

    def __init__(self, *args, **kwargs):
        if self.id_prefix:
            kwargs.setdefault("auto_id", f"id_{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class TermsForm(forms.Form):
    """A remedy with its details (filing, proposals, decisions)."""

    remedy = forms.ChoiceField(choices=[(r.value, r.label) for r in REQUESTABLE_REMEDIES])
    refund_amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        decimal_places=2,
        max_digits=14,
        help_text="For a partial refund: how much goes back to the buyer.",
    )
    new_shipment_deadline = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="New agreement: the supplier ships (or ships the replacement) by this date.",
    )
    price_reduction = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        decimal_places=2,
        max_digits=14,
        help_text="New agreement: the goods' price goes down by this amount (refunded if paid).",
    )
    replacement = forms.BooleanField(
        required=False,
        label="The supplier sends replacement goods",
        help_text="New agreement: the goods are replaced (they ship again by the new deadline).",
    )
    terms_note = forms.CharField(
        required=False,
        max_length=2000,
        label="Other terms",
        help_text="New agreement: anything else both sides agree.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    # Which remedy each detail belongs to (the page shows only the chosen remedy's fields).
    REMEDY_FIELDS = {
        "refund_amount": Remedy.PARTIAL_REFUND,
        "new_shipment_deadline": Remedy.NEW_AGREEMENT,
        "price_reduction": Remedy.NEW_AGREEMENT,
        "replacement": Remedy.NEW_AGREEMENT,
        "terms_note": Remedy.NEW_AGREEMENT,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, remedy in self.REMEDY_FIELDS.items():
            self.fields[name].remedy = str(remedy)

    def terms(self) -> OutcomeTerms:
        data = self.cleaned_data
        return OutcomeTerms(
            remedy=data["remedy"],
            refund_amount=data.get("refund_amount"),
            new_shipment_deadline=_end_of_day(data.get("new_shipment_deadline")),
            price_reduction=data.get("price_reduction"),
            replacement=bool(data.get("replacement")),
            terms_note=data.get("terms_note") or "",
        )


class DisputeOpenForm(TermsForm):
    field_order = ["type", "description", "remedy"]

    type = forms.ChoiceField(label="What went wrong")
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=5000,
        help_text="Compare with the contract: which requirement is not met, how many units, what you found.",
    )
    # A declared field: the form metaclass moves it off the class, so it does not shadow
    # BaseForm.files (the uploaded files) at run time as the stubs assume.
    files = MultipleFileField(  # type: ignore[assignment]
        label="Evidence",
        help_text="Required for quality, quantity and damage claims. " + FILES_HELP,
    )

    def __init__(self, *args, type_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = type_choices
        self.fields["remedy"].label = "What you ask for"


class ProposalForm(_OwnIds, TermsForm):
    id_prefix = "proposal"

    message = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )


class MessageForm(_OwnIds, forms.Form):
    id_prefix = "chat"

    body = forms.CharField(
        label="Message", max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )


class RejectForm(_OwnIds, forms.Form):
    id_prefix = "reject"

    message = forms.CharField(
        label="Why you reject it", max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )
    # Declared field, moved off the class by the form metaclass (see DisputeOpenForm.files).
    files = MultipleFileField(label="Evidence (optional)", help_text=FILES_HELP)  # type: ignore[assignment]


class EvidenceForm(_OwnIds, forms.Form):
    id_prefix = "evidence"

    description = forms.CharField(required=False, max_length=300)
    # Declared field, moved off the class by the form metaclass (see DisputeOpenForm.files).
    files = MultipleFileField(label="Files", help_text=FILES_HELP, required=True)  # type: ignore[assignment]


class NoteForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


# --- mediation (admin intermediate forms) -----------------------------------------------------


class EvidenceRequestForm(forms.Form):
    requested_from = forms.ChoiceField(
        choices=[(DisputeParty.BUYER, "Buyer"), (DisputeParty.SUPPLIER, "Supplier")]
    )
    note = forms.CharField(
        label="What you need", max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    due_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["due_date"].initial = (clock.now() + timedelta(days=3)).date()

    def due_at(self) -> datetime | None:
        return _end_of_day(self.cleaned_data.get("due_date"))


class InspectionOrderForm(forms.Form):
    organisation = forms.ModelChoiceField(
        label="Inspection company",
        queryset=inspection_companies_approved(),
    )
    instructions = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 4}))
    fee_amount = forms.DecimalField(min_value=Decimal("0.01"), decimal_places=2, max_digits=14)


class DecisionForm(TermsForm):
    reason = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Both parties read this.",
    )
    supplier_at_fault = forms.TypedChoiceField(
        choices=[
            ("", "By the remedy (refunds and new agreements: yes)"),
            ("yes", "Yes"),
            ("no", "No"),
        ],
        required=False,
        coerce=lambda value: {"yes": True, "no": False}.get(value),
        empty_value=None,
        help_text="Counts as a dispute lost on the supplier's record and settles the inspection fee.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["remedy"].choices = Remedy.choices
