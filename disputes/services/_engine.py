"""The disputes engine: who acts, the dispute lock, the map check, the move with its domain
event, who is told, evidence files, and the sweep loop every stage shares.

Lock order (every service): dispute → escrow → order → inspection; see the package docstring.
"""

import functools
import logging
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files import File
from django.urls import reverse

from accounts.models import User
from disputes.models import (
    Dispute,
    DisputeEvent,
    DisputeParty,
    DisputeStatus,
    DisputeType,
    Evidence,
    EvidenceRequest,
    Inspection,
)
from disputes.transitions import Transition, label_for, transition_for, transitions_from
from orders.models import Order, OrderStatus
from tradeassure import clock
from tradeassure.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed
from tradeassure.events import event_publish, notify
from tradeassure.uploads import DOCUMENT_KINDS, upload_check, upload_delete, upload_store

logger = logging.getLogger(__name__)
S = DisputeStatus
P = DisputeParty
OS = OrderStatus


QUALITY_TYPES = (DisputeType.QUALITY, DisputeType.QUANTITY_SHORT, DisputeType.DAMAGED)
EVIDENCE_FOLDER = "disputes/evidence"


def _rules() -> dict:
    return settings.TRADE_ASSURANCE


def _dispute_rules() -> dict:
    return settings.DISPUTES


# ---------------------------------------------------------------------------------------------
# Who acts, and which claims an order allows.
# ---------------------------------------------------------------------------------------------


def party_of(*, dispute: Dispute, user: User | None) -> str | None:
    """The party a user acts as on this dispute (None: not involved). No user: the system."""
    if user is None:
        return P.SYSTEM
    if not user.is_authenticated or not user.is_active:
        return None
    order = dispute.order
    if user.organisation_id and user.organisation_id == order.buyer_organisation_id:
        return P.BUYER if user.is_buyer else None
    if user.organisation_id and user.organisation_id == order.supplier.organisation_id:
        return P.SUPPLIER if user.is_supplier_staff else None
    if user.is_staff and user.is_mediator:
        return P.MEDIATOR
    return None


# ---------------------------------------------------------------------------------------------
# The engine: lock, check the map and the actor, move, record, tell.
# ---------------------------------------------------------------------------------------------


def _lock(dispute: Dispute | int) -> Dispute:
    pk = dispute if isinstance(dispute, int) else dispute.pk
    found = (
        Dispute.objects.select_for_update(of=("self",), no_key=True)
        .select_related(
            "order__supplier__organisation", "order__buyer_organisation", "order__current_version"
        )
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise NotFound("No such dispute.", code="dispute_not_found")
    return found


def _lock_order_and_escrow(order: Order | int) -> Order:
    """Lock the order's escrow, then the order (the order every money path and the payments
    capture hook use), so a dispute service never waits on them in the opposite order."""
    from orders.services import order_lock_for_update

    return order_lock_for_update(order=order if isinstance(order, int) else order.pk)


def _status_label(status: str) -> str:
    return S(status).label.lower() if status in S.values else status


def _check(dispute: Dispute, action: str, party: str | None) -> Transition:
    rows = transitions_from(action, dispute.status)
    if not rows:
        raise InvalidTransition(
            f"“{label_for(action)}” is not possible while the dispute is "
            f"{_status_label(dispute.status)}.",
            code="invalid_transition",
        )
    row = transition_for(dispute.status, action, party)
    if row is None:
        raise NotAllowed(f"You may not “{rows[0].label}” on this dispute.", code="not_allowed")
    return row


def _move(
    dispute: Dispute,
    row: Transition,
    *,
    party: str,
    actor: User | None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> DisputeEvent:
    """Apply a checked transition to a locked dispute: status, event row, domain event."""
    from_status = dispute.status
    dispute.status = row.target
    dispute.save()
    event = DisputeEvent.objects.create(
        dispute=dispute,
        action=row.action,
        actor_party=party,
        actor=actor,
        from_status=from_status,
        to_status=row.target,
        note=note,
        data=data or {},
        created_at=clock.now(),
    )
    event_publish(
        topic=f"dispute.{row.action}",
        subject_type="dispute",
        subject_id=dispute.pk,
        audience=[dispute.order.buyer_organisation_id, dispute.order.supplier.organisation_id],
        payload={
            "dispute": dispute.reference,
            "order": dispute.order.reference,
            "action": row.action,
            "from_status": from_status,
            "to_status": row.target,
            "actor": party,
            **(data or {}),
        },
    )
    return event


def _members(organisation_id: int, role: str) -> list[User]:
    return list(User.objects.filter(organisation_id=organisation_id, role=role, is_active=True))


def _buyers(dispute: Dispute) -> list[User]:
    return _members(dispute.order.buyer_organisation_id, User.Role.BUYER)


def _suppliers(dispute: Dispute) -> list[User]:
    return _members(dispute.order.supplier.organisation_id, User.Role.SUPPLIER_STAFF)


def _mediators(dispute: Dispute) -> list[User]:
    if dispute.mediator_id:
        return [dispute.mediator]
    return list(User.objects.filter(role=User.Role.MEDIATOR, is_staff=True, is_active=True))


def _party_users(dispute: Dispute, party: str) -> list[User]:
    return _buyers(dispute) if party == P.BUYER else _suppliers(dispute)


def _other(party: str) -> str:
    return P.SUPPLIER if party == P.BUYER else P.BUYER


def _tell(dispute: Dispute, users: Iterable[User], title: str, body: str = "") -> None:
    notify(
        users=users,
        title=f"{dispute.reference} ({dispute.order.reference}): {title}",
        body=body,
        url=dispute.get_absolute_url(),
    )


def _tell_mediators(dispute: Dispute, title: str, body: str = "") -> None:
    notify(
        users=_mediators(dispute),
        title=f"{dispute.reference}: {title}",
        body=body,
        url=reverse("admin:disputes_dispute_change", args=[dispute.pk]),
    )


def _held(order: Order) -> Decimal:
    from payments.selectors import escrow_summary

    return escrow_summary(escrow_reference=order.escrow_reference).held


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "—"


def _require_mediator(dispute: Dispute, actor: User, *, assigned: bool = True) -> str:
    party = party_of(dispute=dispute, user=actor)
    if party != P.MEDIATOR or not actor.has_perm("disputes.mediate_dispute"):
        raise NotAllowed("Only mediators can do this.", code="not_allowed")
    if assigned and dispute.mediator_id != actor.pk:
        raise NotAllowed(
            "This dispute is assigned to another mediator; take it over first.", code="not_assigned"
        )
    return party


def _clear_timers(dispute: Dispute) -> None:
    dispute.supplier_response_due_at = None
    dispute.escalation_due_at = None
    dispute.pickup_due_at = None


# ---------------------------------------------------------------------------------------------
# Evidence files.
# ---------------------------------------------------------------------------------------------


def _store_files(files: Sequence[File]) -> list[Any]:
    """Check EVERY file first (so a bad one refuses all), then store them privately."""
    limit = _dispute_rules()["MAX_FILES_PER_UPLOAD"]
    files = [file for file in files if file is not None]
    if len(files) > limit:
        raise ValidationFailed(
            f"Attach at most {limit} files at a time.",
            code="too_many_files",
            fields={"files": [f"Attach at most {limit} files at a time."]},
        )
    for file in files:
        try:
            upload_check(file=file, allowed_kinds=DOCUMENT_KINDS)
        except ValidationFailed as error:
            message = f"{_display_name(file)}: {error.message}"
            raise ValidationFailed(message, code=error.code, fields={"files": [message]}) from None
    stored = []
    try:
        for file in files:
            stored.append(upload_store(file=file, folder=EVIDENCE_FOLDER))
    except Exception:
        for item in stored:
            upload_delete(name=item.name)
        raise
    pending = _pending_uploads.get()
    if pending is not None:
        pending.extend(item.name for item in stored)
    return stored


def _display_name(file: File) -> str:
    name = str(getattr(file, "name", "") or "file")
    return name.replace("\\", "/").rsplit("/", 1)[-1][:80] or "file"


_pending_uploads: ContextVar[list[str] | None] = ContextVar(
    "disputes_pending_uploads", default=None
)


def _uploads_removed_on_error(service):
    """Files stored by a service that then fails (and rolls back) are deleted again."""

    @functools.wraps(service)
    def wrapper(*args, **kwargs):
        names: list[str] = []
        token = _pending_uploads.set(names)
        try:
            return service(*args, **kwargs)
        except BaseException:
            for name in names:
                upload_delete(name=name)
            raise
        finally:
            _pending_uploads.reset(token)

    return wrapper


def _evidence_create(
    *,
    dispute: Dispute,
    party: str,
    actor: User,
    stored: Sequence[Any],
    description: str = "",
    request: EvidenceRequest | None = None,
    inspection: Inspection | None = None,
) -> list[Evidence]:
    now = clock.now()
    return Evidence.objects.bulk_create(
        Evidence(
            dispute=dispute,
            party=party,
            uploaded_by=actor,
            description=description[:300],
            stored_name=item.name,
            original_name=item.original_name,
            content_type=item.content_type,
            size=item.size,
            uploaded_at=now,
            request=request,
            inspection=inspection,
        )
        for item in stored
    )


def _due_ids(queryset, batch: int | None = None) -> list[int]:
    batch = batch or _rules()["SWEEP_BATCH_SIZE"]
    return list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])


def _sweep(ids: Iterable[int], service) -> int:
    """Run a per-row service in its own transaction; one failure stops no other row."""
    done = 0
    for pk in ids:
        try:
            if service(pk):
                done += 1
        except Exception:
            logger.exception("Dispute sweep failed for %s", pk)
    return done
