"""Reads of the pre-shipment inspection that the pages, the API, the admin and the disputes app
share: already filtered to what the reader may see, with their related rows fetched in a constant
number of queries. Outsiders get NotFound (404)."""

from django.db.models import Prefetch, QuerySet

from orders.error_codes import OrderErrorCode
from orders.inspection.models import (
    InspectionStatus,
    PreshipmentInspection,
    PreshipmentInspectionEvent,
    PreshipmentInspectionFile,
)
from orders.models import Order
from orders.selectors import orders_visible_to
from tradeassure.core.errors import NotFound

S = InspectionStatus
# What an inspection company sees: paid bookings and its reports (an unpaid booking is not work).
INSPECTOR_STATUSES = (S.SCHEDULED, S.CONFORMS, S.DOES_NOT_CONFORM, S.RESOLVED)


def _with_details(queryset: QuerySet[PreshipmentInspection]) -> QuerySet[PreshipmentInspection]:
    return queryset.select_related(
        "organisation",
        "order__supplier__organisation",
        "order__buyer_organisation",
        "contract_version",
    ).prefetch_related(
        Prefetch("files", queryset=PreshipmentInspectionFile.objects.order_by("id")),
        Prefetch(
            "events",
            queryset=PreshipmentInspectionEvent.objects.select_related("actor").order_by("id"),
        ),
    )


def order_inspections(*, order: Order) -> list[PreshipmentInspection]:
    """The order's inspections, newest first, with files and timelines (3 queries; none when
    the order was read by `order_for_user`, which counts them, and has none). The caller has
    already checked that the reader may see the order."""
    if "inspections_count" in order.__dict__ and not order.__dict__["inspections_count"]:
        return []  # counted by the order's own read (a count of no rows reads as NULL)
    return list(_with_details(PreshipmentInspection.objects.filter(order=order)))


def inspections_visible_to(user) -> QuerySet[PreshipmentInspection]:
    """Inspections of the orders the user may see, or assigned to the user's inspection company."""
    if not user.is_authenticated or not user.is_active:
        return PreshipmentInspection.objects.none()
    if user.is_inspector and user.organisation_id:
        return PreshipmentInspection.objects.filter(
            organisation_id=user.organisation_id, status__in=INSPECTOR_STATUSES
        )
    return PreshipmentInspection.objects.filter(order__in=orders_visible_to(user).values("pk"))


def inspection_for_user(*, user, pk: int) -> PreshipmentInspection:
    inspection = _with_details(inspections_visible_to(user)).filter(pk=pk).first()
    if inspection is None:
        raise NotFound("No such inspection.", code=OrderErrorCode.INSPECTION_NOT_FOUND)
    return inspection


def inspections_for_inspector(*, user) -> QuerySet[PreshipmentInspection]:
    """The user's inspection company's pre-shipment assignments, waiting ones first."""
    if not (user.is_authenticated and user.is_active and user.is_inspector):
        return PreshipmentInspection.objects.none()
    return (
        inspections_visible_to(user)
        .select_related("order__supplier", "order__buyer_organisation")
        .order_by("-fee_paid_at", "-id")
    )


def inspection_for_inspector(*, user, pk: int) -> PreshipmentInspection:
    if not (user.is_authenticated and user.is_active and user.is_inspector):
        raise NotFound("No such inspection.", code=OrderErrorCode.INSPECTION_NOT_FOUND)
    inspection = (
        _with_details(inspections_visible_to(user))
        .prefetch_related("contract_version__items")
        .filter(pk=pk)
        .first()
    )
    if inspection is None:
        raise NotFound("No such inspection.", code=OrderErrorCode.INSPECTION_NOT_FOUND)
    return inspection


def inspection_file_for_user(*, user, inspection_pk: int, pk: int) -> PreshipmentInspectionFile:
    """A report file, for the order's parties, the inspection company and permitted staff."""
    file = (
        PreshipmentInspectionFile.objects.filter(
            inspection__in=inspections_visible_to(user).values("pk"),
            inspection_id=inspection_pk,
            pk=pk,
        )
        .only("stored_name", "original_name", "content_type")
        .first()
    )
    if file is None:
        raise NotFound("No such file.", code=OrderErrorCode.INSPECTION_NOT_FOUND)
    return file


def inspection_reports_for_order(*, order_id: int) -> list[PreshipmentInspection]:
    """The order's reported inspections (for the dispute case page: the mediator reads them)."""
    return list(
        _with_details(
            PreshipmentInspection.objects.filter(
                order_id=order_id, status__in=(S.CONFORMS, S.DOES_NOT_CONFORM, S.RESOLVED)
            )
        )
    )
