"""Reads about suppliers that pages, services and other apps share."""

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Prefetch, Q, QuerySet, Sum, Value, When
from django.http import Http404

from suppliers.models import (
    Category,
    Product,
    Supplier,
    SupplierOrderRecord,
    SupplierStatusChange,
    TradeAssuranceApplication,
    TradeAssuranceStatus,
    VerificationDocument,
    VerificationStatus,
)
from tradeassure.core import clock
from tradeassure.core.money import check_currency, round_money

DIRECTORY_PAGE_SIZE = 20
RATE_PLACES = Decimal("0.0001")


def supplier_rules() -> dict:
    return settings.SUPPLIERS


def supplier_for_user(user) -> Supplier | None:
    """The supplier company a supplier-staff user works for, or None (anyone else, or no profile yet)."""
    if not getattr(user, "is_authenticated", False) or not user.is_supplier_staff:
        return None
    if user.organisation_id is None:
        return None
    return (
        Supplier.objects.select_related("organisation", "metrics")
        .filter(organisation_id=user.organisation_id)
        .first()
    )


# --- Money in USD, for limits and exposure only ------------------------------------------------


def amount_in_usd(amount: Decimal, currency: str) -> Decimal:
    """Convert at the reference rate in settings (limits and exposure only; money never moves here)."""
    check_currency(currency)
    if not isinstance(amount, Decimal):
        raise TypeError("Money amounts are Decimal, never float.")
    rate = supplier_rules()["USD_REFERENCE_RATES"][currency]
    return round_money(amount * rate, "USD")


def trade_assurance_limit_for(completed_volume_usd: Decimal) -> Decimal:
    """The limit formula: min(cap, floor + factor x completed protected volume), in USD."""
    rules = supplier_rules()
    grown = rules["LIMIT_FLOOR_USD"] + rules["LIMIT_VOLUME_FACTOR"] * completed_volume_usd
    return round_money(min(rules["LIMIT_CAP_USD"], grown), "USD")


def supplier_open_exposure_usd(*, supplier: Supplier, exclude_order_reference: str = "") -> Decimal:
    """The sum of the supplier's open protected orders, in USD."""
    records = SupplierOrderRecord.objects.filter(
        supplier=supplier, status=SupplierOrderRecord.Status.OPEN
    )
    if exclude_order_reference:
        records = records.exclude(order_reference=exclude_order_reference)
    total = records.aggregate(total=Sum("amount_usd"))["total"]
    return total if total is not None else Decimal("0.00")


def supplier_limit_left_usd(*, supplier: Supplier) -> Decimal:
    """How much more (USD) the supplier may take in protected orders now: limit - open orders.
    Shown to buyers on the profile and the order form before they write an order."""
    return max(
        supplier.ta_limit_usd - supplier_open_exposure_usd(supplier=supplier), Decimal("0.00")
    )


def supplier_completed_volume_usd(*, supplier: Supplier) -> Decimal:
    total = SupplierOrderRecord.objects.filter(
        supplier=supplier, status=SupplierOrderRecord.Status.COMPLETED
    ).aggregate(total=Sum("amount_usd"))["total"]
    return total if total is not None else Decimal("0.00")


# --- Eligibility -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleCheck:
    code: str
    label: str
    passed: bool
    detail: str

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "label": self.label,
            "passed": self.passed,
            "detail": self.detail,
        }


def supplier_eligibility_checks(*, supplier: Supplier) -> list[RuleCheck]:
    """Each Trade Assurance rule (DESIGN.md §6) with whether it passes and why, in plain words."""
    today = clock.now().date()
    countries = settings.TRADE_ASSURANCE["ELIGIBLE_COUNTRIES"]
    gold = supplier.membership == Supplier.Membership.GOLD
    expires = supplier.membership_expires_on
    if not gold:
        membership = RuleCheck(
            "gold_membership", "Active gold membership", False, "The membership is free tier."
        )
    elif expires is None or expires < today:
        membership = RuleCheck(
            "gold_membership",
            "Active gold membership",
            False,
            f"The gold membership expired on {expires:%d %b %Y}." if expires else "No expiry set.",
        )
    else:
        membership = RuleCheck(
            "gold_membership",
            "Active gold membership",
            True,
            f"Gold until {expires:%d %b %Y}.",
        )
    country_ok = supplier.country.upper() in countries
    country = RuleCheck(
        "country",
        "Country where Trade Assurance is offered",
        country_ok,
        f"{supplier.country} is {'in' if country_ok else 'not in'} the allowed list "
        f"({', '.join(countries)}).",
    )
    verified = supplier.verification_status == VerificationStatus.APPROVED
    verification = RuleCheck(
        "verification",
        "Business verification approved",
        verified,
        "Approved."
        if verified
        else f"Verification is {supplier.get_verification_status_display().lower()}.",
    )
    suspended = supplier.ta_status == TradeAssuranceStatus.SUSPENDED
    not_suspended = RuleCheck(
        "not_suspended",
        "Not suspended",
        not suspended,
        f"Suspended: {supplier.ta_status_reason}" if suspended else "Not suspended.",
    )
    return [membership, country, verification, not_suspended]


def supplier_failed_rules(*, supplier: Supplier) -> list[RuleCheck]:
    return [check for check in supplier_eligibility_checks(supplier=supplier) if not check.passed]


_PLAIN_REASONS = {
    "gold_membership": "its membership has lapsed",
    "verification": "its business verification is not current",
    "not_suspended": "its Trade Assurance protection is suspended",
    "trade_assurance": "it has not been approved for Trade Assurance",
    "country": "Trade Assurance is not offered in its country",
}


def supplier_refusal_message(*, supplier: Supplier) -> str | None:
    """Why a buyer cannot start a protected order with this supplier, in a buyer's words (no rule
    names or statuses), or None when it can take orders."""
    failed = [check.code for check in supplier_failed_rules(supplier=supplier)]
    if supplier.ta_status != TradeAssuranceStatus.APPROVED and "not_suspended" not in failed:
        failed.append("trade_assurance")
    if not failed:
        return None
    # One reason is enough for a buyer: the first that applies, most telling first.
    order = ["gold_membership", "verification", "not_suspended", "trade_assurance", "country"]
    reason = _PLAIN_REASONS[min(failed, key=order.index)]
    return (
        f"{supplier.legal_name} is not accepting new protected orders at the moment: {reason}. "
        "Orders already in progress with this supplier keep their protection. You can choose "
        "another supplier in the directory."
    )


# --- Metrics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricsSnapshot:
    window_days: int
    orders_count: int
    closed_count: int
    completed_count: int
    completion_rate: Decimal | None
    on_time_rate: Decimal | None
    dispute_rate: Decimal | None
    disputes_lost: int
    average_rating: Decimal | None
    ratings_count: int
    median_hours_to_confirm: Decimal | None
    completed_volume_usd: Decimal
    open_exposure_usd: Decimal


def _ratio(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATE_PLACES)


def supplier_metrics_compute(*, supplier: Supplier, at: datetime | None = None) -> MetricsSnapshot:
    """Compute the rolling-window metrics from the order records (README for the definitions).

    - completion rate: completed / orders closed in the window that the supplier had confirmed
      (completed, cancelled after confirmation, refunded);
    - on-time shipment rate: shipped by the deadline / orders whose deadline has passed or that
      shipped;
    - dispute rate: disputed / orders placed in the window; disputes lost: a count;
    - average rating (1 to 5) over rated orders; median hours from placing to confirming.
    """
    moment = at or clock.now()
    window_days = supplier_rules()["METRICS_WINDOW_DAYS"]
    since = moment - timedelta(days=window_days)
    records = list(
        SupplierOrderRecord.objects.filter(supplier=supplier, placed_at__gte=since).only(
            "status",
            "placed_at",
            "confirmed_at",
            "shipment_deadline",
            "shipped_at",
            "disputed",
            "dispute_lost",
            "rating",
        )
    )
    status = SupplierOrderRecord.Status
    completed = [r for r in records if r.status == status.COMPLETED]
    closed = [
        r
        for r in records
        if r.status in (status.COMPLETED, status.REFUNDED)
        or (r.status == status.CANCELLED and r.confirmed_at is not None)
    ]
    shipment_due = [
        r
        for r in records
        if r.shipped_at is not None
        or (
            r.shipment_deadline is not None
            and r.shipment_deadline < moment
            and r.status != status.CANCELLED
        )
    ]
    on_time = [
        r
        for r in shipment_due
        if r.shipped_at is not None
        and (r.shipment_deadline is None or r.shipped_at <= r.shipment_deadline)
    ]
    ratings = [r.rating for r in records if r.rating is not None]
    confirm_hours = [
        Decimal((r.confirmed_at - r.placed_at).total_seconds()) / Decimal(3600)
        for r in records
        if r.confirmed_at is not None and r.confirmed_at >= r.placed_at
    ]
    return MetricsSnapshot(
        window_days=window_days,
        orders_count=len(records),
        closed_count=len(closed),
        completed_count=len(completed),
        completion_rate=_ratio(len(completed), len(closed)),
        on_time_rate=_ratio(len(on_time), len(shipment_due)),
        dispute_rate=_ratio(sum(1 for r in records if r.disputed), len(records)),
        disputes_lost=sum(1 for r in records if r.dispute_lost),
        average_rating=(
            (Decimal(sum(ratings)) / Decimal(len(ratings))).quantize(Decimal("0.01"))
            if ratings
            else None
        ),
        ratings_count=len(ratings),
        median_hours_to_confirm=(
            Decimal(statistics.median(confirm_hours)).quantize(Decimal("0.1"))
            if confirm_hours
            else None
        ),
        completed_volume_usd=supplier_completed_volume_usd(supplier=supplier),
        open_exposure_usd=supplier_open_exposure_usd(supplier=supplier),
    )


def suspension_reasons(*, snapshot: MetricsSnapshot) -> list[str]:
    """Which suspension thresholds the snapshot crosses (none below the minimum order count)."""
    rules = supplier_rules()
    if snapshot.orders_count < rules["SUSPENSION_MIN_ORDERS"]:
        return []
    reasons = []

    def pct(value: Decimal) -> str:
        return f"{value * 100:.0f}%"

    if (
        snapshot.completion_rate is not None
        and snapshot.completion_rate < rules["SUSPENSION_MIN_COMPLETION_RATE"]
    ):
        reasons.append(
            f"order completion rate {pct(snapshot.completion_rate)} is below "
            f"{pct(rules['SUSPENSION_MIN_COMPLETION_RATE'])}"
        )
    if (
        snapshot.on_time_rate is not None
        and snapshot.on_time_rate < rules["SUSPENSION_MIN_ON_TIME_RATE"]
    ):
        reasons.append(
            f"on-time shipment rate {pct(snapshot.on_time_rate)} is below "
            f"{pct(rules['SUSPENSION_MIN_ON_TIME_RATE'])}"
        )
    if (
        snapshot.dispute_rate is not None
        and snapshot.dispute_rate > rules["SUSPENSION_MAX_DISPUTE_RATE"]
    ):
        reasons.append(
            f"dispute rate {pct(snapshot.dispute_rate)} is above "
            f"{pct(rules['SUSPENSION_MAX_DISPUTE_RATE'])}"
        )
    if snapshot.disputes_lost >= rules["SUSPENSION_MAX_DISPUTES_LOST"]:
        reasons.append(
            f"{snapshot.disputes_lost} disputes lost (the limit is "
            f"{rules['SUSPENSION_MAX_DISPUTES_LOST'] - 1})"
        )
    if (
        snapshot.average_rating is not None
        and snapshot.ratings_count >= rules["SUSPENSION_MIN_RATINGS"]
        and snapshot.average_rating < rules["SUSPENSION_MIN_AVERAGE_RATING"]
    ):
        reasons.append(
            f"average buyer rating {snapshot.average_rating} is below "
            f"{rules['SUSPENSION_MIN_AVERAGE_RATING']}"
        )
    return reasons


# --- Pages -------------------------------------------------------------------------------------


def supplier_directory(
    *, query: str = "", country: str = "", category: str = "", trade_assurance: str = ""
) -> QuerySet[Supplier]:
    """Public directory: search by company or product name, filter by country, category and TA."""
    suppliers = Supplier.objects.select_related("metrics").annotate(
        active_products=Count("products", filter=Q(products__is_active=True), distinct=True)
    )
    if query:
        matching = Product.objects.filter(is_active=True, name__icontains=query).values(
            "supplier_id"
        )
        suppliers = suppliers.filter(Q(legal_name__icontains=query) | Q(pk__in=matching))
    if country:
        suppliers = suppliers.filter(country=country.upper())
    if category:
        suppliers = suppliers.filter(
            pk__in=Supplier.categories.through.objects.filter(category__slug=category).values(
                "supplier_id"
            )
        )
    if trade_assurance == "yes":
        suppliers = suppliers.filter(ta_status=TradeAssuranceStatus.APPROVED)
    elif trade_assurance == "no":
        suppliers = suppliers.exclude(ta_status=TradeAssuranceStatus.APPROVED)
    # Trade-assured suppliers first (what buyers come for), then by name.
    assured_first = Case(
        When(ta_status=TradeAssuranceStatus.APPROVED, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return (
        suppliers.prefetch_related("categories")
        .annotate(assured_first=assured_first)
        .order_by("assured_first", "legal_name", "pk")
    )


def directory_countries() -> list[str]:
    return list(Supplier.objects.order_by("country").values_list("country", flat=True).distinct())


def categories_all() -> QuerySet[Category]:
    return Category.objects.all()


def supplier_public(*, pk: int) -> Supplier:
    supplier = (
        Supplier.objects.select_related("metrics", "organisation")
        .prefetch_related("categories")
        .filter(pk=pk)
        .first()
    )
    if supplier is None:
        raise Http404("No such supplier.")
    return supplier


def supplier_public_products(*, supplier: Supplier) -> QuerySet[Product]:
    return Product.objects.filter(supplier=supplier, is_active=True).select_related("category")


def supplier_recent_ratings(*, supplier: Supplier, limit: int = 10) -> QuerySet:
    return (
        SupplierOrderRecord.objects.filter(supplier=supplier, rating__isnull=False)
        .order_by("-completed_at", "-pk")
        .values("rating", "completed_at")[:limit]
    )


def supplier_rating_distribution(*, supplier: Supplier) -> list[tuple[int, int]]:
    counts = dict(
        SupplierOrderRecord.objects.filter(supplier=supplier, rating__isnull=False)
        .values_list("rating")
        .annotate(n=Count("pk"))
        .values_list("rating", "n")
    )
    return [(stars, counts.get(stars, 0)) for stars in range(5, 0, -1)]


def product_public(*, pk: int) -> Product:
    product = (
        Product.objects.select_related("supplier", "supplier__metrics", "category")
        .filter(pk=pk, is_active=True)
        .first()
    )
    if product is None:
        raise Http404("No such product.")
    return product


def product_image_visible(*, user, pk: int) -> Product:
    """A product image is public while the product is; its own supplier's staff always see it."""
    product = Product.objects.filter(pk=pk).exclude(image_name="").first()
    if product is None:
        raise Http404("No image.")
    own = supplier_for_user(user)
    if not product.is_active and (own is None or own.pk != product.supplier_id):
        raise Http404("No image.")
    return product


def supplier_products_for_staff(*, supplier: Supplier) -> QuerySet[Product]:
    return Product.objects.filter(supplier=supplier).select_related("category")


def supplier_product_for_staff(*, user, pk: int) -> Product:
    supplier = supplier_for_user(user)
    product = (
        Product.objects.filter(pk=pk, supplier=supplier).first() if supplier is not None else None
    )
    if product is None:
        raise Http404("No such product.")
    return product


def supplier_status_history(*, supplier: Supplier, limit: int = 50) -> QuerySet:
    return SupplierStatusChange.objects.filter(supplier=supplier).select_related("actor")[:limit]


def supplier_documents(*, supplier: Supplier) -> QuerySet[VerificationDocument]:
    return VerificationDocument.objects.filter(supplier=supplier).select_related("uploaded_by")


def supplier_latest_application(*, supplier: Supplier) -> TradeAssuranceApplication | None:
    return (
        TradeAssuranceApplication.objects.filter(supplier=supplier)
        .select_related("decided_by")
        .first()
    )


def verification_document_visible(*, user, pk: int) -> VerificationDocument:
    """A verification document, for its supplier's staff and vetting staff only (404 otherwise)."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such document.")
    document = VerificationDocument.objects.select_related("supplier").filter(pk=pk).first()
    if document is None:
        raise Http404("No such document.")
    if user.is_vetting and user.is_staff:
        return document
    if user.is_supplier_staff and user.organisation_id == document.supplier.organisation_id:
        return document
    raise Http404("No such document.")


def supplier_document_for_staff(*, user, pk: int) -> VerificationDocument:
    supplier = supplier_for_user(user)
    document = (
        VerificationDocument.objects.select_related("supplier")
        .filter(pk=pk, supplier=supplier)
        .first()
        if supplier is not None
        else None
    )
    if document is None:
        raise Http404("No such document.")
    return document


def prefetch_products(queryset: QuerySet[Supplier]) -> QuerySet[Supplier]:
    return queryset.prefetch_related(
        Prefetch("products", queryset=Product.objects.filter(is_active=True).order_by("name"))
    )
