"""What every third-party inspection shares, whoever ordered it (a mediator in a dispute, or the
buyer before shipment): the verdict, what a complete report is, and who pays the fee.

Knows no app: the disputes' `Inspection` and the orders' `PreshipmentInspection` both use it.
"""

from collections.abc import Sequence
from typing import Any

from django.db import models


class InspectionVerdict(models.TextChoices):
    CONFORMS = "conforms", "Conforms to the contract"
    DOES_NOT_CONFORM = "does_not_conform", "Does not conform to the contract"


def inspection_report_errors(
    *, verdict: str, findings: str, files: Sequence[Any]
) -> dict[str, list[str]]:
    """What is missing from an inspector's report ({} when it is complete). The files' content
    is checked when they are stored (`tradeassure.core.uploads.uploads_store_all`)."""
    errors: dict[str, list[str]] = {}
    if verdict not in InspectionVerdict.values:
        errors["verdict"] = ["Choose whether the goods conform to the contract."]
    if not (findings or "").strip():
        errors["findings"] = ["Write the findings."]
    if not [file for file in files if file is not None]:
        errors["files"] = ["Attach the report (PDF or images)."]
    return errors


def supplier_at_fault_by_verdict(verdict: str) -> bool:
    """The fee rule: goods that do not conform put the supplier at fault (the buyer's fee is
    refunded and charged to the supplier); goods that conform mean the fee pays the inspector."""
    return verdict == InspectionVerdict.DOES_NOT_CONFORM
