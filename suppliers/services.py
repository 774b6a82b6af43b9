"""Every write about suppliers: profiles, catalogue, verification, Trade Assurance, metrics.

Each service is one transaction, locks the supplier row it changes, checks the actor and the
transition, and records every status or limit change as a SupplierStatusChange row (who, when,
why, from, to) in the same transaction. Side effects go through events/notify (outbox).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils.text import slugify

from accounts.models import Organisation, User
from suppliers import selectors
from suppliers.error_codes import SupplierErrorCode
from suppliers.models import (
    Category,
    Product,
    Supplier,
    SupplierMetrics,
    SupplierOrderRecord,
    SupplierStatusChange,
    TradeAssuranceApplication,
    TradeAssuranceStatus,
    VerificationDocument,
    VerificationStatus,
)
from suppliers.topics import SupplierTopic
from tradeassure.core import clock
from tradeassure.core.bulk import AnyOf, bulk_insert
from tradeassure.core.errors import (
    Conflict,
    InvalidTransition,
    NotAllowed,
    NotFound,
    Unprocessable,
    ValidationFailed,
)
from tradeassure.core.money import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    MINOR_UNITS,
    format_money,
    is_exact,
)
from tradeassure.core.sweeps import sweep_due
from tradeassure.core.uploads import DOCUMENT_KINDS, IMAGE_KINDS, upload_delete, upload_store
from tradeassure.platform.events import event_publish, notify

logger = logging.getLogger(__name__)

ORDER_RECORD_STATUSES = {choice.value for choice in SupplierOrderRecord.Status}

# Trade Assurance transitions and who may make them.
TA_TRANSITIONS: dict[str, set[str]] = {
    # apply (supplier staff)
    TradeAssuranceStatus.NONE: {TradeAssuranceStatus.PENDING},
    TradeAssuranceStatus.REJECTED: {TradeAssuranceStatus.PENDING},
    # decide (vetting staff)
    TradeAssuranceStatus.PENDING: {TradeAssuranceStatus.APPROVED, TradeAssuranceStatus.REJECTED},
    # suspend (system or vetting staff)
    TradeAssuranceStatus.APPROVED: {TradeAssuranceStatus.SUSPENDED},
    # reinstate (vetting staff)
    TradeAssuranceStatus.SUSPENDED: {TradeAssuranceStatus.APPROVED},
}
VERIFICATION_TRANSITIONS: dict[str, set[str]] = {
    VerificationStatus.NOT_SUBMITTED: {VerificationStatus.PENDING},
    VerificationStatus.REJECTED: {VerificationStatus.PENDING},
    VerificationStatus.PENDING: {VerificationStatus.APPROVED, VerificationStatus.REJECTED},
    VerificationStatus.APPROVED: {VerificationStatus.REJECTED},  # revoked after a re-check
}


# --- Helpers -----------------------------------------------------------------------------------


def _lock(supplier: Supplier) -> Supplier:
    return Supplier.objects.select_for_update().get(pk=supplier.pk)


def _require_vetting(actor: User) -> None:
    if not (actor.is_staff and actor.is_vetting):
        raise NotAllowed("Only vetting staff may do this.", code=SupplierErrorCode.VETTING_ONLY)


def _require_supplier_staff(actor: User, supplier: Supplier) -> None:
    if not (actor.is_supplier_staff and actor.organisation_id == supplier.organisation_id):
        raise NotAllowed(
            "Only this supplier's staff may do this.", code=SupplierErrorCode.NOT_SUPPLIER_STAFF
        )


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give a reason.", fields={"reason": ["A reason is required."]})
    return reason


# The event each recorded status change publishes (`supplier.<field>_changed`).
_CHANGE_TOPICS: dict[str, SupplierTopic] = {
    SupplierStatusChange.Field.VERIFICATION: SupplierTopic.VERIFICATION_CHANGED,
    SupplierStatusChange.Field.TRADE_ASSURANCE: SupplierTopic.TRADE_ASSURANCE_CHANGED,
    SupplierStatusChange.Field.LIMIT: SupplierTopic.LIMIT_CHANGED,
    SupplierStatusChange.Field.MEMBERSHIP: SupplierTopic.MEMBERSHIP_CHANGED,
}


def _record_change(
    *,
    supplier: Supplier,
    field: str,
    from_value: str,
    to_value: str,
    reason: str,
    actor: User | None,
) -> SupplierStatusChange:
    change = SupplierStatusChange.objects.create(
        supplier=supplier,
        field=field,
        from_value=from_value,
        to_value=to_value,
        reason=reason,
        actor=actor,
        created_at=clock.now(),
    )
    event_publish(
        topic=_CHANGE_TOPICS[field],
        subject_type="supplier",
        subject_id=supplier.pk,
        audience=[supplier.organisation_id],
        payload={"from": from_value, "to": to_value, "reason": reason},
    )
    return change


def _notify_supplier(supplier: Supplier, *, title: str, body: str) -> None:
    staff = User.objects.filter(
        organisation_id=supplier.organisation_id,
        role=User.Role.SUPPLIER_STAFF,
        is_active=True,
        is_api_service=False,
    )
    notify(users=list(staff), title=title, body=body, url=reverse("suppliers:dashboard"))


def _notify_vetting(*, title: str, body: str, url: str) -> None:
    """Tell vetting staff that something waits in their queue."""
    vetting = User.objects.filter(role=User.Role.VETTING, is_active=True, is_staff=True)
    notify(users=list(vetting), title=title, body=body, url=url)


def _set_ta_status(*, supplier: Supplier, to: str, reason: str, actor: User | None) -> None:
    """Move the (locked) supplier's TA status along the map and record it."""
    current = supplier.ta_status
    if to not in TA_TRANSITIONS.get(current, set()):
        raise InvalidTransition(
            f"Trade Assurance cannot go from {supplier.get_ta_status_display()} to "
            f"{TradeAssuranceStatus(to).label}.",
            code=SupplierErrorCode.INVALID_TA_TRANSITION,
        )
    supplier.ta_status = to
    supplier.ta_status_reason = reason
    supplier.ta_status_changed_at = clock.now()
    supplier.save(update_fields=["ta_status", "ta_status_reason", "ta_status_changed_at"])
    _record_change(
        supplier=supplier,
        field=SupplierStatusChange.Field.TRADE_ASSURANCE,
        from_value=current,
        to_value=to,
        reason=reason,
        actor=actor,
    )


def _set_limit(*, supplier: Supplier, limit: Decimal, reason: str, actor: User | None) -> None:
    if supplier.ta_limit_usd == limit:
        return
    previous = supplier.ta_limit_usd
    supplier.ta_limit_usd = limit
    supplier.save(update_fields=["ta_limit_usd"])
    _record_change(
        supplier=supplier,
        field=SupplierStatusChange.Field.LIMIT,
        from_value=f"{previous:.2f}",
        to_value=f"{limit:.2f}",
        reason=reason,
        actor=actor,
    )


def _formula_limit(supplier: Supplier) -> Decimal:
    return selectors.trade_assurance_limit_for(
        selectors.supplier_completed_volume_usd(supplier=supplier)
    )


# --- Profile and catalogue ---------------------------------------------------------------------


def _check_profile(*, legal_name: str, country: str, declared_capacity: int) -> dict:
    errors: dict[str, list[str]] = {}
    if not legal_name.strip():
        errors["legal_name"] = ["Enter the company's legal name."]
    if len(country) != 2 or not country.isalpha():
        errors["country"] = ["Use the two-letter ISO country code, e.g. CN."]
    if declared_capacity < 0:
        errors["declared_capacity"] = ["Capacity cannot be negative."]
    if errors:
        raise ValidationFailed("Some company details are not valid.", fields=errors)
    return errors


@transaction.atomic
def supplier_profile_create(
    *,
    actor: User,
    legal_name: str,
    country: str,
    year_established: int | None = None,
    declared_capacity: int = 0,
    description: str = "",
    categories: list[Category] | None = None,
) -> Supplier:
    """Create the Supplier row for the actor's supplier organisation (first dashboard visit)."""
    if not actor.is_supplier_staff or actor.organisation_id is None:
        raise NotAllowed(
            "Only supplier staff can create a supplier profile.",
            code=SupplierErrorCode.NOT_SUPPLIER,
        )
    organisation = Organisation.objects.select_for_update().get(pk=actor.organisation_id)
    if organisation.kind != Organisation.Kind.SUPPLIER:
        raise NotAllowed(
            "This organisation is not a supplier.", code=SupplierErrorCode.NOT_SUPPLIER
        )
    if Supplier.objects.filter(organisation=organisation).exists():
        raise Conflict(
            "This company already has a supplier profile.", code=SupplierErrorCode.PROFILE_EXISTS
        )
    _check_profile(legal_name=legal_name, country=country, declared_capacity=declared_capacity)
    supplier = Supplier.objects.create(
        organisation=organisation,
        legal_name=legal_name.strip(),
        country=country.upper(),
        year_established=year_established,
        declared_capacity=declared_capacity,
        description=description.strip(),
    )
    if categories:
        supplier.categories.set(categories)
    SupplierMetrics.objects.create(
        supplier=supplier,
        computed_at=clock.now(),
        window_days=selectors.supplier_rules()["METRICS_WINDOW_DAYS"],
    )
    event_publish(
        topic=SupplierTopic.CREATED,
        subject_type="supplier",
        subject_id=supplier.pk,
        audience=[organisation.pk],
        payload={"legal_name": supplier.legal_name, "country": supplier.country},
    )
    return supplier


@transaction.atomic
def supplier_profile_update(
    *,
    actor: User,
    supplier: Supplier,
    legal_name: str,
    country: str,
    year_established: int | None,
    declared_capacity: int,
    description: str,
    categories: list[Category],
) -> Supplier:
    """Edit the company profile. A change of country after verification sends it back for review."""
    _require_supplier_staff(actor, supplier)
    _check_profile(legal_name=legal_name, country=country, declared_capacity=declared_capacity)
    supplier = _lock(supplier)
    country = country.upper()
    identity_changed = country != supplier.country or legal_name.strip() != supplier.legal_name
    supplier.legal_name = legal_name.strip()
    supplier.country = country
    supplier.year_established = year_established
    supplier.declared_capacity = declared_capacity
    supplier.description = description.strip()
    supplier.save()
    supplier.categories.set(categories)
    if identity_changed and supplier.verification_status == VerificationStatus.APPROVED:
        # A verified identity no longer matches the documents: vetting must look again.
        supplier.verification_status = VerificationStatus.PENDING
        supplier.verification_reason = "Legal name or country changed; re-check needed."
        supplier.save(update_fields=["verification_status", "verification_reason"])
        _record_change(
            supplier=supplier,
            field=SupplierStatusChange.Field.VERIFICATION,
            from_value=VerificationStatus.APPROVED,
            to_value=VerificationStatus.PENDING,
            reason="The legal name or country was changed by the supplier.",
            actor=actor,
        )
        _notify_vetting(
            title=f"Verification to review again: {supplier.legal_name}",
            body="The supplier changed its legal name or country after verification.",
            url=reverse("admin:suppliers_pendingverification_change", args=[supplier.pk]),
        )
    return supplier


def _check_product(
    *, name: str, unit_price: Decimal, currency: str, minimum_order_quantity: int
) -> None:
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors["name"] = ["Enter a product name."]
    if currency not in MINOR_UNITS or currency not in settings.SUPPORTED_CURRENCIES:
        errors["currency"] = ["Choose a supported currency."]
    try:
        if unit_price <= 0:
            errors["unit_price"] = ["The price must be more than zero."]
        elif currency in MINOR_UNITS and not is_exact(unit_price, currency):
            errors["unit_price"] = [
                f"{currency} has {MINOR_UNITS[currency]} decimal places; round the price."
            ]
    except (InvalidOperation, TypeError):
        errors["unit_price"] = ["Enter a valid price."]
    if minimum_order_quantity < 1:
        errors["minimum_order_quantity"] = ["The minimum order is at least 1."]
    if errors:
        raise ValidationFailed("Some product details are not valid.", fields=errors)


def _store_product_image(image: File | None) -> tuple[str, str]:
    if image is None:
        return "", ""
    stored = upload_store(file=image, folder="products", allowed_kinds=IMAGE_KINDS)
    return stored.name, stored.content_type


@transaction.atomic
def product_create(
    *,
    actor: User,
    supplier: Supplier,
    name: str,
    unit_price: Decimal,
    currency: str,
    minimum_order_quantity: int = 1,
    unit: str = "pcs",
    lead_time_days: int = 30,
    category: Category | None = None,
    description: str = "",
    specifications: str = "",
    image: File | None = None,
) -> Product:
    """Add a product to the supplier's catalogue."""
    _require_supplier_staff(actor, supplier)
    _check_product(
        name=name,
        unit_price=unit_price,
        currency=currency,
        minimum_order_quantity=minimum_order_quantity,
    )
    image_name, image_type = _store_product_image(image)
    return Product.objects.create(
        supplier=supplier,
        name=name.strip(),
        unit_price=unit_price,
        currency=currency,
        minimum_order_quantity=minimum_order_quantity,
        unit=unit.strip() or "pcs",
        lead_time_days=lead_time_days,
        category=category,
        description=description.strip(),
        specifications=specifications.strip(),
        image_name=image_name,
        image_content_type=image_type,
    )


@transaction.atomic
def product_update(
    *,
    actor: User,
    product: Product,
    name: str,
    unit_price: Decimal,
    currency: str,
    minimum_order_quantity: int,
    unit: str,
    lead_time_days: int,
    category: Category | None,
    description: str,
    specifications: str,
    image: File | None = None,
) -> Product:
    """Edit a product. Orders already placed keep their own copy of price and quantities."""
    product = Product.objects.select_for_update().select_related("supplier").get(pk=product.pk)
    _require_supplier_staff(actor, product.supplier)
    _check_product(
        name=name,
        unit_price=unit_price,
        currency=currency,
        minimum_order_quantity=minimum_order_quantity,
    )
    old_image = product.image_name
    if image is not None:
        product.image_name, product.image_content_type = _store_product_image(image)
        if old_image:
            transaction.on_commit(lambda: upload_delete(name=old_image))
    product.name = name.strip()
    product.unit_price = unit_price
    product.currency = currency
    product.minimum_order_quantity = minimum_order_quantity
    product.unit = unit.strip() or "pcs"
    product.lead_time_days = lead_time_days
    product.category = category
    product.description = description.strip()
    product.specifications = specifications.strip()
    product.save()
    return product


@transaction.atomic
def product_set_active(*, actor: User, product: Product, is_active: bool) -> Product:
    """List or unlist a product (never deleted: orders may point at it)."""
    product = Product.objects.select_for_update().select_related("supplier").get(pk=product.pk)
    _require_supplier_staff(actor, product.supplier)
    if product.is_active != is_active:
        product.is_active = is_active
        product.save(update_fields=["is_active"])
    return product


# --- Verification ------------------------------------------------------------------------------


@transaction.atomic
def verification_document_upload(
    *, actor: User, supplier: Supplier, kind: str, file: File
) -> VerificationDocument:
    """Store a verification document; a first (or post-rejection) upload puts the company in review."""
    _require_supplier_staff(actor, supplier)
    if kind not in VerificationDocument.Kind.values:
        raise ValidationFailed("Choose the document type.", fields={"kind": ["Unknown type."]})
    supplier = _lock(supplier)
    stored = upload_store(file=file, folder="verification", allowed_kinds=DOCUMENT_KINDS)
    document = VerificationDocument.objects.create(
        supplier=supplier,
        kind=kind,
        file_name=stored.name,
        original_name=stored.original_name,
        content_type=stored.content_type,
        size=stored.size,
        uploaded_by=actor,
        uploaded_at=clock.now(),
    )
    if supplier.verification_status in (
        VerificationStatus.NOT_SUBMITTED,
        VerificationStatus.REJECTED,
    ):
        previous = supplier.verification_status
        supplier.verification_status = VerificationStatus.PENDING
        supplier.verification_reason = ""
        supplier.save(update_fields=["verification_status", "verification_reason"])
        _record_change(
            supplier=supplier,
            field=SupplierStatusChange.Field.VERIFICATION,
            from_value=previous,
            to_value=VerificationStatus.PENDING,
            reason=f"Document uploaded: {document.get_kind_display()}.",
            actor=actor,
        )
        _notify_vetting(
            title=f"Verification to review: {supplier.legal_name}",
            body=f"{document.get_kind_display()} uploaded.",
            url=reverse("admin:suppliers_pendingverification_change", args=[supplier.pk]),
        )
    return document


@transaction.atomic
def verification_document_delete(*, actor: User, document: VerificationDocument) -> None:
    """Remove a wrongly uploaded document, only while verification is not approved.

    Approved verification rests on its documents, so those stay for the record.
    """
    supplier = _lock(document.supplier)
    _require_supplier_staff(actor, supplier)
    if supplier.verification_status == VerificationStatus.APPROVED:
        raise InvalidTransition(
            "Verification is approved; its documents are kept. Upload a newer one instead.",
            code=SupplierErrorCode.DOCUMENT_LOCKED,
        )
    document = VerificationDocument.objects.select_for_update().get(pk=document.pk)
    stored_name = document.file_name
    document.delete()
    transaction.on_commit(lambda: upload_delete(name=stored_name))
    if (
        supplier.verification_status == VerificationStatus.PENDING
        and not supplier.documents.exists()
    ):
        supplier.verification_status = VerificationStatus.NOT_SUBMITTED
        supplier.save(update_fields=["verification_status"])
        _record_change(
            supplier=supplier,
            field=SupplierStatusChange.Field.VERIFICATION,
            from_value=VerificationStatus.PENDING,
            to_value=VerificationStatus.NOT_SUBMITTED,
            reason="The supplier removed its last document.",
            actor=actor,
        )


@transaction.atomic
def supplier_verification_decide(
    *,
    actor: User,
    supplier: Supplier,
    approve: bool,
    reason: str,
    verified_capacity: int | None = None,
) -> Supplier:
    """Vetting staff approve or reject the business verification, with a reason."""
    _require_vetting(actor)
    reason = _require_reason(reason)
    supplier = _lock(supplier)
    to = VerificationStatus.APPROVED if approve else VerificationStatus.REJECTED
    if to not in VERIFICATION_TRANSITIONS.get(supplier.verification_status, set()):
        raise InvalidTransition(
            f"{supplier.legal_name}: verification is "
            f"{supplier.get_verification_status_display().lower()}, it cannot become "
            f"{VerificationStatus(to).label.lower()}.",
            code=SupplierErrorCode.INVALID_VERIFICATION_TRANSITION,
        )
    if approve and not supplier.documents.exists():
        raise Unprocessable(
            f"{supplier.legal_name} has uploaded no documents to verify.",
            code=SupplierErrorCode.NO_DOCUMENTS,
        )
    if verified_capacity is not None and verified_capacity < 0:
        raise ValidationFailed(
            "Capacity cannot be negative.", fields={"verified_capacity": ["Must be 0 or more."]}
        )
    previous = supplier.verification_status
    supplier.verification_status = to
    supplier.verification_reason = reason
    supplier.verification_decided_at = clock.now()
    if verified_capacity is not None:
        supplier.verified_capacity = verified_capacity
    supplier.save()
    _record_change(
        supplier=supplier,
        field=SupplierStatusChange.Field.VERIFICATION,
        from_value=previous,
        to_value=to,
        reason=reason,
        actor=actor,
    )
    _notify_supplier(
        supplier,
        title=f"Business verification {VerificationStatus(to).label.lower()}",
        body=reason,
    )
    # A revoked verification suspends Trade Assurance at once (recorded, the supplier told).
    _suspend_for_lapse(supplier)
    return supplier


# --- Membership ----------------------------------------------------------------------------------


@transaction.atomic
def supplier_membership_set(
    *, actor: User, supplier: Supplier, membership: str, expires_on: date | None, reason: str
) -> Supplier:
    """Vetting staff record a membership purchase, renewal or downgrade."""
    _require_vetting(actor)
    reason = _require_reason(reason)
    if membership not in Supplier.Membership.values:
        raise ValidationFailed("Unknown membership.", fields={"membership": ["Unknown tier."]})
    if membership == Supplier.Membership.GOLD and expires_on is None:
        raise ValidationFailed(
            "Gold membership needs an expiry date.",
            fields={"expires_on": ["Required for gold."]},
        )
    supplier = _lock(supplier)
    before = f"{supplier.membership}:{supplier.membership_expires_on or ''}"
    supplier.membership = membership
    supplier.membership_expires_on = expires_on if membership == Supplier.Membership.GOLD else None
    supplier.save(update_fields=["membership", "membership_expires_on"])
    after = f"{supplier.membership}:{supplier.membership_expires_on or ''}"
    if before != after:
        _record_change(
            supplier=supplier,
            field=SupplierStatusChange.Field.MEMBERSHIP,
            from_value=before,
            to_value=after,
            reason=reason,
            actor=actor,
        )
    return supplier


# --- Trade Assurance -------------------------------------------------------------------------


@transaction.atomic
def supplier_apply_for_trade_assurance(
    *, actor: User, supplier: Supplier
) -> TradeAssuranceApplication:
    """Apply for Trade Assurance. Refused, with the failing rules named, unless every rule passes."""
    _require_supplier_staff(actor, supplier)
    supplier = _lock(supplier)
    if supplier.ta_status == TradeAssuranceStatus.PENDING:
        raise Conflict(
            "An application is already waiting for review.",
            code=SupplierErrorCode.APPLICATION_PENDING,
        )
    if supplier.ta_status in (TradeAssuranceStatus.APPROVED, TradeAssuranceStatus.SUSPENDED):
        raise InvalidTransition(
            f"Trade Assurance is already {supplier.get_ta_status_display().lower()}.",
            code=SupplierErrorCode.ALREADY_DECIDED,
        )
    checks = selectors.supplier_eligibility_checks(supplier=supplier)
    failed = [check for check in checks if not check.passed]
    if failed:
        raise Unprocessable(
            "Not eligible yet: " + "; ".join(f"{c.label} — {c.detail}" for c in failed),
            code=SupplierErrorCode.SUPPLIER_NOT_ELIGIBLE,
            fields={"rules": [c.code for c in failed]},
        )
    try:
        with transaction.atomic():
            application = TradeAssuranceApplication.objects.create(
                supplier=supplier,
                rule_checks=[check.as_dict() for check in checks],
                submitted_by=actor,
                submitted_at=clock.now(),
            )
    except IntegrityError as error:
        raise Conflict(
            "An application is already waiting for review.",
            code=SupplierErrorCode.APPLICATION_PENDING,
        ) from error
    _set_ta_status(
        supplier=supplier,
        to=TradeAssuranceStatus.PENDING,
        reason="Applied for Trade Assurance.",
        actor=actor,
    )
    _notify_vetting(
        title=f"Trade Assurance application: {supplier.legal_name}",
        body="Every rule passed when it applied; review and decide.",
        url=reverse("admin:suppliers_tradeassuranceapplication_change", args=[application.pk]),
    )
    return application


@transaction.atomic
def supplier_application_decide(
    *, actor: User, application: TradeAssuranceApplication, approve: bool, reason: str
) -> TradeAssuranceApplication:
    """Vetting staff approve (granting status and the formula limit) or reject an application."""
    _require_vetting(actor)
    reason = _require_reason(reason)
    supplier = _lock(application.supplier)
    application = TradeAssuranceApplication.objects.select_for_update().get(pk=application.pk)
    if application.status != TradeAssuranceApplication.Status.PENDING:
        raise InvalidTransition(
            f"The application of {supplier.legal_name} was already "
            f"{application.get_status_display().lower()}.",
            code=SupplierErrorCode.APPLICATION_DECIDED,
        )
    if approve:
        failed = selectors.supplier_failed_rules(supplier=supplier)
        if failed:
            raise Unprocessable(
                f"{supplier.legal_name} no longer meets: "
                + "; ".join(f"{c.label} — {c.detail}" for c in failed),
                code=SupplierErrorCode.SUPPLIER_NOT_ELIGIBLE,
            )
    application.status = (
        TradeAssuranceApplication.Status.APPROVED
        if approve
        else TradeAssuranceApplication.Status.REJECTED
    )
    application.decided_by = actor
    application.decided_at = clock.now()
    application.decision_reason = reason
    application.save()
    _set_ta_status(
        supplier=supplier,
        to=TradeAssuranceStatus.APPROVED if approve else TradeAssuranceStatus.REJECTED,
        reason=reason,
        actor=actor,
    )
    if approve:
        _set_limit(
            supplier=supplier,
            limit=_formula_limit(supplier),
            reason="Trade Assurance granted: limit set by the formula.",
            actor=actor,
        )
    _notify_supplier(
        supplier,
        title=f"Trade Assurance application {application.get_status_display().lower()}",
        body=reason,
    )
    return application


@transaction.atomic
def supplier_suspend(*, supplier: Supplier, reason: str, actor: User | None = None) -> Supplier:
    """Suspend Trade Assurance (actor None = automatic, from the metric thresholds)."""
    if actor is not None:
        _require_vetting(actor)
    reason = _require_reason(reason)
    supplier = _lock(supplier)
    _set_ta_status(supplier=supplier, to=TradeAssuranceStatus.SUSPENDED, reason=reason, actor=actor)
    _notify_supplier(supplier, title="Trade Assurance suspended", body=reason)
    return supplier


@transaction.atomic
def supplier_reinstate(*, actor: User, supplier: Supplier, reason: str) -> Supplier:
    """Vetting staff lift a suspension; automatic suspension then pauses for a grace period."""
    _require_vetting(actor)
    reason = _require_reason(reason)
    supplier = _lock(supplier)
    _set_ta_status(supplier=supplier, to=TradeAssuranceStatus.APPROVED, reason=reason, actor=actor)
    supplier.suspension_grace_until = clock.now() + timedelta(
        days=selectors.supplier_rules()["REINSTATEMENT_GRACE_DAYS"]
    )
    supplier.save(update_fields=["suspension_grace_until"])
    _set_limit(
        supplier=supplier,
        limit=_formula_limit(supplier),
        reason="Reinstated: limit set by the formula.",
        actor=actor,
    )
    _notify_supplier(supplier, title="Trade Assurance reinstated", body=reason)
    return supplier


# --- Membership expiry and lapsed eligibility (a daily sweep) ----------------------------------

GOLD = Supplier.Membership.GOLD


def _lapse_reasons(supplier: Supplier) -> list[str]:
    """Why a Trade Assurance supplier no longer qualifies by membership or verification."""
    reasons = []
    expires = supplier.membership_expires_on
    if supplier.membership != GOLD or expires is None or expires < clock.now().date():
        reasons.append("the gold membership has lapsed")
    if supplier.verification_status != VerificationStatus.APPROVED:
        reasons.append("the business verification was revoked")
    return reasons


def _suspend_for_lapse(supplier: Supplier) -> bool:
    """Suspend a (locked) Trade Assurance supplier that lost its membership or verification."""
    reasons = _lapse_reasons(supplier)
    if supplier.ta_status != TradeAssuranceStatus.APPROVED or not reasons:
        return False
    reason = (
        "Automatic suspension: "
        + "; ".join(reasons)
        + ". Orders in progress keep their protection; new protected orders are refused until "
        "this is put right."
    )
    _set_ta_status(supplier=supplier, to=TradeAssuranceStatus.SUSPENDED, reason=reason, actor=None)
    _notify_supplier(supplier, title="Trade Assurance suspended", body=reason)
    return True


@transaction.atomic
def supplier_membership_expire(*, supplier: Supplier) -> bool:
    """System: a gold membership past its expiry date becomes free (recorded), and Trade
    Assurance is suspended in the same transaction. False if it was not due (renewed meanwhile)."""
    supplier = _lock(supplier)
    expires = supplier.membership_expires_on
    if supplier.membership != GOLD or expires is None or expires >= clock.now().date():
        return False
    supplier.membership = Supplier.Membership.FREE
    supplier.membership_expires_on = None
    supplier.save(update_fields=["membership", "membership_expires_on"])
    _record_change(
        supplier=supplier,
        field=SupplierStatusChange.Field.MEMBERSHIP,
        from_value=f"gold:{expires}",
        to_value="free:",
        reason=f"Gold membership expired on {expires:%d %b %Y}.",
        actor=None,
    )
    if not _suspend_for_lapse(supplier):
        _notify_supplier(
            supplier,
            title="Gold membership expired",
            body=f"Your gold membership ended on {expires:%d %b %Y}. Renew it to apply for "
            "Trade Assurance.",
        )
    return True


@transaction.atomic
def supplier_trade_assurance_lapse(*, supplier: Supplier) -> bool:
    """System: suspend Trade Assurance of a supplier whose membership lapsed or whose
    verification was revoked. False if it still qualifies (or is not approved)."""
    return _suspend_for_lapse(_lock(supplier))


# Warn this many days before expiry, nearest first: a supplier already inside 7 days gets only
# the 7-day warning (both are then marked sent for that expiry date).
EXPIRY_WARNINGS = ((7, "expiry_warned_7_for"), (30, "expiry_warned_30_for"))


@transaction.atomic
def supplier_membership_warn(*, supplier: Supplier, days: int) -> bool:
    """System: tell the supplier its gold membership (and so Trade Assurance) ends soon, once per
    warning and expiry date. False if not due or already sent."""
    supplier = _lock(supplier)
    today = clock.now().date()
    expires = supplier.membership_expires_on
    fields = [field for limit, field in EXPIRY_WARNINGS if limit >= days]
    if (
        supplier.membership != GOLD
        or expires is None
        or not today <= expires <= today + timedelta(days=days)
        or getattr(supplier, fields[0]) == expires
    ):
        return False
    for field in fields:
        setattr(supplier, field, expires)
    supplier.save(update_fields=fields)
    left = (expires - today).days
    consequence = (
        "Trade Assurance is suspended then: new protected orders are refused (orders in progress "
        "keep their protection)."
        if supplier.ta_status == TradeAssuranceStatus.APPROVED
        else "You need an active gold membership for Trade Assurance."
    )
    _notify_supplier(
        supplier,
        title=f"Gold membership ends in {left} day{'s' if left != 1 else ''}",
        body=f"Your gold membership ends on {expires:%d %b %Y}. Renew it before then. {consequence}",
    )
    return True


def suppliers_sweep_memberships() -> int:
    """Daily: expire lapsed gold memberships, suspend Trade Assurance where membership or
    verification lapsed, and send the 7- and 30-day expiry warnings. Idempotent, set-based."""
    batch = settings.TRADE_ASSURANCE["SWEEP_BATCH_SIZE"]

    def expired(now: datetime):
        return Supplier.objects.filter(membership=GOLD, membership_expires_on__lt=now.date())

    def lapsed(now: datetime):
        return Supplier.objects.filter(ta_status=TradeAssuranceStatus.APPROVED).filter(
            Q(membership=Supplier.Membership.FREE)
            | Q(membership_expires_on__lt=now.date())
            | ~Q(verification_status=VerificationStatus.APPROVED)
        )

    done = sweep_due(
        due=expired,
        handle=lambda pk: supplier_membership_expire(supplier=Supplier(pk=pk)),
        batch_size=batch,
        name="suppliers.expire_memberships",
    )
    done += sweep_due(
        due=lapsed,
        handle=lambda pk: supplier_trade_assurance_lapse(supplier=Supplier(pk=pk)),
        batch_size=batch,
        name="suppliers.lapse_trade_assurance",
    )
    for days, field in EXPIRY_WARNINGS:

        def warn_due(now: datetime, days: int = days, field: str = field):
            today = now.date()
            return Supplier.objects.filter(
                membership=GOLD,
                membership_expires_on__gte=today,
                membership_expires_on__lte=today + timedelta(days=days),
            ).exclude(**{field: F("membership_expires_on")})

        def warn(pk: int, days: int = days) -> bool:
            return supplier_membership_warn(supplier=Supplier(pk=pk), days=days)

        done += sweep_due(
            due=warn_due,
            handle=warn,
            batch_size=batch,
            name=f"suppliers.warn_membership_{days}",
        )
    return done


# --- The interface orders and disputes use -------------------------------------------------------

AMOUNT_LIMIT = Decimal(10) ** (AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES)


def _amount_usd_or_refuse(amount: Decimal, currency: str) -> Decimal:
    """The amount in USD, or ValidationFailed for a non-Decimal, NaN, huge or unknown-currency one."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
        raise ValidationFailed(
            "The amount is not a valid money amount.", code=SupplierErrorCode.BAD_AMOUNT
        )
    try:
        return selectors.amount_in_usd(amount, currency)
    except (ValueError, TypeError, ArithmeticError) as error:
        raise ValidationFailed(
            f"Unsupported currency or amount: {currency!r}.", code=SupplierErrorCode.BAD_CURRENCY
        ) from error


@transaction.atomic
def supplier_assert_can_take_order(
    *,
    supplier: Supplier,
    amount: Decimal,
    currency: str,
    exclude_order_reference: str = "",
) -> Supplier:
    """Refuse a protected order the supplier may not take, saying why in a buyer's words.

    Locks the supplier row, so two orders placed at once cannot both squeeze under the limit
    (the caller records the order with supplier_order_record_sync in the same transaction).
    `exclude_order_reference` leaves an already-recorded order out of the open exposure.
    Returns the supplier as locked (fresh from the database).
    """
    return supplier_check_order_in_transaction(
        supplier_id=supplier.pk,
        amount=amount,
        currency=currency,
        exclude_order_reference=exclude_order_reference,
    )


def supplier_check_order_in_transaction(
    *,
    supplier_id: int,
    amount: Decimal,
    currency: str,
    exclude_order_reference: str = "",
) -> Supplier:
    """`supplier_assert_can_take_order` for a caller already in its own transaction (placing an
    order): the same lock and rules, without a savepoint of its own, and by id, so the caller
    needs no read of the supplier before it (the lock is that read). No such supplier:
    ValidationFailed on `supplier_id`. Returns the locked supplier."""
    locked = Supplier.objects.select_for_update().filter(pk=supplier_id).first()
    if locked is None:
        raise ValidationFailed("No such supplier.", fields={"supplier_id": ["No such supplier."]})
    failed = selectors.supplier_failed_rules(supplier=locked)
    if locked.ta_status != TradeAssuranceStatus.APPROVED and not any(
        check.code == "not_suspended" for check in failed
    ):
        failed.append(
            selectors.RuleCheck(
                "trade_assurance",
                "Trade Assurance approved",
                False,
                f"Trade Assurance status: {locked.get_ta_status_display().lower()}.",
            )
        )
    if failed:
        raise NotAllowed(
            selectors.supplier_refusal_message(supplier=locked)
            or f"{locked.legal_name} is not accepting new protected orders at the moment.",
            code=SupplierErrorCode.SUPPLIER_NOT_ELIGIBLE,
            fields={"rules": [check.code for check in failed]},
        )
    amount_usd = _amount_usd_or_refuse(amount, currency)
    if amount <= 0:
        raise ValidationFailed(
            "The order amount must be more than zero.", code=SupplierErrorCode.BAD_AMOUNT
        )
    exposure = selectors.supplier_open_exposure_usd(
        supplier=locked, exclude_order_reference=exclude_order_reference
    )
    available = max(locked.ta_limit_usd - exposure, Decimal("0.00"))
    if amount_usd > available:
        order_amount = format_money(amount, currency)
        if currency != "USD":
            order_amount += f", about {format_money(amount_usd, 'USD')}"
        raise Unprocessable(
            f"This order ({order_amount}) is more than the {format_money(available, 'USD')} "
            f"{locked.legal_name} can take in protected orders right now (its Trade Assurance "
            f"limit is {format_money(locked.ta_limit_usd, 'USD')}, less its open orders). "
            "Place a smaller order or split it.",
            code=SupplierErrorCode.TRADE_ASSURANCE_LIMIT_EXCEEDED,
            fields={"available_usd": [str(available)], "limit_usd": [str(locked.ta_limit_usd)]},
        )
    return locked


@transaction.atomic
def supplier_order_record_sync(
    *,
    supplier: Supplier,
    order_reference: str,
    amount: Decimal,
    currency: str,
    status: str,
    placed_at: datetime,
    confirmed_at: datetime | None = None,
    shipment_deadline: datetime | None = None,
    shipped_at: datetime | None = None,
    completed_at: datetime | None = None,
    disputed: bool = False,
    dispute_lost: bool = False,
    rating: int | None = None,
) -> None:
    """Upsert one order's facts (by order_reference); metrics are recomputed after commit."""
    if status not in ORDER_RECORD_STATUSES:
        raise ValidationFailed(
            f"Unknown order status {status!r}.", code=SupplierErrorCode.BAD_ORDER_STATUS
        )
    if rating is not None and not (isinstance(rating, int) and 1 <= rating <= 5):
        raise ValidationFailed("A rating is 1 to 5 stars.", code=SupplierErrorCode.BAD_RATING)
    if not order_reference:
        raise ValidationFailed(
            "An order reference is required.", code=SupplierErrorCode.BAD_REFERENCE
        )
    amount_usd = _amount_usd_or_refuse(amount, currency)
    if amount < 0:
        raise ValidationFailed("The amount cannot be negative.", code=SupplierErrorCode.BAD_AMOUNT)
    _lock(supplier)
    existing = (
        SupplierOrderRecord.objects.select_for_update()
        .filter(order_reference=order_reference)
        .first()
    )
    if existing is not None and existing.supplier_id != supplier.pk:
        raise Conflict(
            f"{order_reference} is recorded for another supplier.",
            code=SupplierErrorCode.RECORD_SUPPLIER_MISMATCH,
        )
    values = {
        "amount": amount,
        "currency": currency,
        "amount_usd": amount_usd,
        "status": status,
        "placed_at": placed_at,
        "confirmed_at": confirmed_at,
        "shipment_deadline": shipment_deadline,
        "shipped_at": shipped_at,
        "completed_at": completed_at,
        "disputed": disputed,
        "dispute_lost": dispute_lost,
        "rating": rating,
        "updated_at": clock.now(),
    }
    if existing is None:
        SupplierOrderRecord.objects.create(
            supplier=supplier, order_reference=order_reference, **values
        )
    else:
        for name, value in values.items():
            setattr(existing, name, value)
        existing.save()
    supplier_id = supplier.pk
    transaction.on_commit(lambda: _queue_recompute(supplier_id))


@dataclass(frozen=True)
class OrderRecordFacts:
    """One order's facts for `supplier_order_records_sync_many` (see `supplier_order_record_sync`)."""

    supplier_id: int
    order_reference: str
    amount: Decimal
    currency: str
    status: str
    placed_at: datetime
    confirmed_at: datetime | None = None
    shipment_deadline: datetime | None = None
    shipped_at: datetime | None = None
    completed_at: datetime | None = None
    disputed: bool = False
    dispute_lost: bool = False
    rating: int | None = None


def supplier_order_records_sync_many(facts: Sequence[OrderRecordFacts]) -> None:
    """`supplier_order_record_sync` for a batch (a sweep): the same checks, the suppliers locked
    once each in key order, every record upserted with one statement, and one Celery message
    after commit to recompute the suppliers' metrics."""
    if not facts:
        return
    for fact in facts:
        if fact.status not in ORDER_RECORD_STATUSES:
            raise ValidationFailed(
                f"Unknown order status {fact.status!r}.", code=SupplierErrorCode.BAD_ORDER_STATUS
            )
        if fact.rating is not None and not 1 <= fact.rating <= 5:
            raise ValidationFailed("A rating is 1 to 5 stars.", code=SupplierErrorCode.BAD_RATING)
        if not fact.order_reference:
            raise ValidationFailed(
                "An order reference is required.", code=SupplierErrorCode.BAD_REFERENCE
            )
        if fact.amount < 0:
            raise ValidationFailed(
                "The amount cannot be negative.", code=SupplierErrorCode.BAD_AMOUNT
            )
    supplier_ids = sorted({fact.supplier_id for fact in facts})
    list(
        Supplier.objects.select_for_update().filter(pk__in=supplier_ids).order_by("pk").values("pk")
    )
    references = [fact.order_reference for fact in facts]
    owners = dict(
        SupplierOrderRecord.objects.filter(AnyOf("order_reference", references)).values_list(
            "order_reference", "supplier_id"
        )
    )
    now = clock.now()
    records = []
    usd: dict[tuple[Decimal, str], Decimal] = {}
    for fact in facts:
        owner = owners.get(fact.order_reference)
        if owner is not None and owner != fact.supplier_id:
            raise Conflict(
                f"{fact.order_reference} is recorded for another supplier.",
                code=SupplierErrorCode.RECORD_SUPPLIER_MISMATCH,
            )
        money = (fact.amount, fact.currency)
        if money not in usd:
            usd[money] = _amount_usd_or_refuse(fact.amount, fact.currency)
        records.append(
            (
                fact.supplier_id,
                fact.order_reference,
                fact.amount,
                fact.currency,
                usd[money],
                fact.status,
                fact.placed_at,
                fact.confirmed_at,
                fact.shipment_deadline,
                fact.shipped_at,
                fact.completed_at,
                fact.disputed,
                fact.dispute_lost,
                fact.rating,
                now,
            )
        )
    bulk_insert(
        SupplierOrderRecord,
        [
            "supplier_id",
            "order_reference",
            "amount",
            "currency",
            "amount_usd",
            "status",
            "placed_at",
            "confirmed_at",
            "shipment_deadline",
            "shipped_at",
            "completed_at",
            "disputed",
            "dispute_lost",
            "rating",
            "updated_at",
        ],
        records,
        upsert_on=["order_reference"],
    )
    transaction.on_commit(lambda: _queue_recompute_many(supplier_ids))


def supplier_metrics_recompute_many(*, supplier_ids: Sequence[int]) -> None:
    """`supplier_metrics_recompute` once for each of these suppliers, in key order."""
    for supplier in Supplier.objects.filter(pk__in=sorted(set(supplier_ids))).order_by("pk"):
        supplier_metrics_recompute(supplier=supplier)


def _queue_recompute_many(supplier_ids: list[int]) -> None:
    from suppliers.tasks import recompute_suppliers_metrics

    try:
        recompute_suppliers_metrics.delay(supplier_ids)
    except Exception:
        logger.warning("Broker unavailable; nightly recompute will catch %s.", supplier_ids)


def supplier_order_record_open(
    *,
    supplier: Supplier,
    order_reference: str,
    amount: Decimal,
    currency: str,
    placed_at: datetime,
    shipment_deadline: datetime | None = None,
) -> None:
    """Record a just-placed order as open exposure: one INSERT.

    For `order_place` only, which holds the supplier's lock from
    `supplier_check_order_in_transaction` in the same transaction (so no second lock) and has
    just created the order (so no record can exist to read first; a reused reference still
    fails on the unique index). The same amount rules as `supplier_order_record_sync`.
    """
    if not order_reference:
        raise ValidationFailed(
            "An order reference is required.", code=SupplierErrorCode.BAD_REFERENCE
        )
    amount_usd = _amount_usd_or_refuse(amount, currency)
    if amount < 0:
        raise ValidationFailed("The amount cannot be negative.", code=SupplierErrorCode.BAD_AMOUNT)
    SupplierOrderRecord.objects.create(
        supplier=supplier,
        order_reference=order_reference,
        amount=amount,
        currency=currency,
        amount_usd=amount_usd,
        status=SupplierOrderRecord.Status.OPEN,
        placed_at=placed_at,
        shipment_deadline=shipment_deadline,
        updated_at=clock.now(),
    )
    supplier_id = supplier.pk
    transaction.on_commit(lambda: _queue_recompute(supplier_id))


def _queue_recompute(supplier_id: int) -> None:
    from suppliers.tasks import recompute_supplier_metrics

    try:
        recompute_supplier_metrics.delay(supplier_id)
    except Exception:
        logger.warning("Broker unavailable; nightly recompute will catch supplier %s.", supplier_id)


@transaction.atomic
def supplier_metrics_recompute(*, supplier: Supplier) -> None:
    """Recompute the metrics snapshot and the limit; suspend automatically below the thresholds."""
    supplier = _lock(supplier)
    snapshot = selectors.supplier_metrics_compute(supplier=supplier)
    SupplierMetrics.objects.update_or_create(
        supplier=supplier,
        defaults={
            "computed_at": clock.now(),
            "window_days": snapshot.window_days,
            "orders_count": snapshot.orders_count,
            "closed_count": snapshot.closed_count,
            "completed_count": snapshot.completed_count,
            "completion_rate": snapshot.completion_rate,
            "on_time_rate": snapshot.on_time_rate,
            "dispute_rate": snapshot.dispute_rate,
            "disputes_lost": snapshot.disputes_lost,
            "average_rating": snapshot.average_rating,
            "ratings_count": snapshot.ratings_count,
            "median_hours_to_confirm": snapshot.median_hours_to_confirm,
            "completed_volume_usd": snapshot.completed_volume_usd,
            "open_exposure_usd": snapshot.open_exposure_usd,
        },
    )
    if supplier.ta_status == TradeAssuranceStatus.APPROVED:
        _set_limit(
            supplier=supplier,
            limit=selectors.trade_assurance_limit_for(snapshot.completed_volume_usd),
            reason="Recomputed from completed protected volume.",
            actor=None,
        )
        in_grace = (
            supplier.suspension_grace_until is not None
            and supplier.suspension_grace_until > clock.now()
        )
        reasons = selectors.suspension_reasons(snapshot=snapshot)
        if reasons and not in_grace:
            _set_ta_status(
                supplier=supplier,
                to=TradeAssuranceStatus.SUSPENDED,
                reason="Automatic suspension: " + "; ".join(reasons) + ".",
                actor=None,
            )
            _notify_supplier(
                supplier, title="Trade Assurance suspended", body=supplier.ta_status_reason
            )


def supplier_metrics_recompute_all() -> int:
    """Nightly: recompute every supplier, one transaction each, so one failure stops no other."""
    count = 0
    for supplier_id in Supplier.objects.order_by("pk").values_list("pk", flat=True).iterator():
        supplier = Supplier.objects.filter(pk=supplier_id).first()
        if supplier is None:
            continue
        try:
            supplier_metrics_recompute(supplier=supplier)
        except Exception:
            logger.exception("Metrics recompute failed for supplier %s", supplier_id)
            continue
        count += 1
    return count


# --- Categories (vetting staff curate the list) ------------------------------------------------


@transaction.atomic
def category_create(*, actor: User, name: str) -> Category:
    _require_vetting(actor)
    name = name.strip()
    slug = slugify(name)
    if not name or not slug:
        raise ValidationFailed("Enter a category name.", fields={"name": ["Required."]})
    if Category.objects.filter(slug=slug).exists():
        raise Conflict("That category exists already.", code=SupplierErrorCode.CATEGORY_EXISTS)
    return Category.objects.create(name=name, slug=slug)


def supplier_get(*, pk: int) -> Supplier:
    supplier = Supplier.objects.filter(pk=pk).first()
    if supplier is None:
        raise NotFound("No such supplier.")
    return supplier
