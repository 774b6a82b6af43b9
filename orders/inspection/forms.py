"""Forms of the inspection pages. The fee and report forms serve the dispute inspections too
(`disputes.forms` re-exports them): one form per thing an inspector or a buyer fills in."""

from django import forms

from accounts.selectors import inspection_companies_approved
from tradeassure.core.forms import MultipleFileField
from tradeassure.core.inspections import InspectionVerdict

FILES_HELP = "PDF, PNG, JPEG or WebP; checked by content; up to 10 MB each."


class InspectionFeeForm(forms.Form):
    # Rendered bare beside its button: the accessible name comes from aria-label.
    method = forms.ChoiceField(
        label="Payment method",
        choices=[("card", "Card"), ("bank_transfer", "Bank transfer (T/T)")],
        initial="card",
        widget=forms.Select(attrs={"aria-label": "Payment method"}),
    )


class InspectionReportForm(forms.Form):
    verdict = forms.ChoiceField(choices=InspectionVerdict.choices, widget=forms.RadioSelect)
    findings = forms.CharField(max_length=10000, widget=forms.Textarea(attrs={"rows": 6}))
    # Declared field, moved off the class by the form metaclass.
    files = MultipleFileField(label="Report (PDF or images)", help_text=FILES_HELP, required=True)  # type: ignore[assignment]


class InspectionBookForm(forms.Form):
    organisation = forms.ModelChoiceField(
        label="Inspection company",
        queryset=inspection_companies_approved(),
        empty_label=None,
    )
    instructions = forms.CharField(
        label="What the inspector should check (optional)",
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class InspectionDatesForm(forms.Form):
    first = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}))
    second = forms.DateField(
        label="Another date (optional)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    third = forms.DateField(
        label="Another date (optional)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    note = forms.CharField(label="Note (optional)", max_length=500, required=False)

    def dates(self) -> list:
        return [self.cleaned_data.get(name) for name in ("first", "second", "third")]


class InspectionNoteForm(forms.Form):
    note = forms.CharField(
        label="Note (optional)",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
