"""The disputes engine every stage shares: who acts, the dispute lock, the move with its domain
event, who is told, evidence files, and the sweep.

The map and its check are the kernel's (`disputes.transitions.LIFECYCLE`); who a user is on a
dispute is who they are on its order (`orders.parties`), so both rules exist once. Lock order in
every service: dispute → escrow → order → inspection (see the package docstring).
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.team import Capability, team_require
from disputes.error_codes import DisputeErrorCode
from disputes.models import (
    Dispute,
    DisputeEvent,
    DisputeParty,
    Evidence,
    EvidenceRequest,
    Inspection,
)
from disputes.transitions import LIFECYCLE, Transition
from orders import parties
from orders.models import Order
from tradeassure.core import clock
from tradeassure.core.bulk import bulk_insert, update_claimed_in_groups
from tradeassure.core.errors import DomainError, NotAllowed, NotFound
from tradeassure.core.moments import local_text, moment_token
from tradeassure.core.sweeps import BatchSweep, sweep_batches, sweep_due
from tradeassure.core.uploads import (  # noqa: F401 (re-exported to the disputes services)
    uploads_removed_on_error,
    uploads_store_all,
)
from tradeassure.platform.events import (
    EventSpec,
    NoticeSpec,
    event_publish,
    events_publish_many,
    notify,
    notify_many,
)
from tradeassure.platform.models import SystemAlert

logger = logging.getLogger(__name__)
P = DisputeParty

EVIDENCE_FOLDER = "disputes/evidence"


# ---------------------------------------------------------------------------------------------
# Who acts, and who is told.
# ---------------------------------------------------------------------------------------------


def party_of(*, dispute: Dispute, user: User | None) -> DisputeParty | None:
    """The party a user acts as on this dispute (None: not involved). No user: the system.

    A dispute's parties are its order's (`orders.parties.party_of`); the inspector acts only
    through their own inspection (`inspection_report_submit` checks them there)."""
    party = parties.party_of(order=dispute.order, user=user)
    return None if party is None else P(party)


def dispute_check(
    dispute: Dispute, action: str, actor: User | None
) -> tuple[Transition, DisputeParty]:
    """The row the actor may take now and the party they act as, or the refusal: the member's
    team role first (`role_not_allowed`: disputes are purchasing's, sales' and admins'),
    then the map's."""
    party = party_of(dispute=dispute, user=actor)
    if party in (P.BUYER, P.SUPPLIER):
        team_require(actor, Capability.DISPUTE)
    row, acting = LIFECYCLE.check_as(dispute, action, party)
    return row, DisputeParty(acting)


def require_mediator(dispute: Dispute, actor: User, *, assigned: bool = True) -> str:
    """The actor as the dispute's mediator (with the permission, and assigned unless not needed)."""
    party = party_of(dispute=dispute, user=actor)
    if party != P.MEDIATOR or not actor.has_perm("disputes.mediate_dispute"):
        raise NotAllowed("Only mediators can do this.", code="not_allowed")
    if assigned and dispute.mediator_id != actor.pk:
        raise NotAllowed(
            "This dispute is assigned to another mediator; take it over first.",
            code=DisputeErrorCode.NOT_ASSIGNED,
        )
    return party


def dispute_mediators(dispute: Dispute) -> list[User]:
    """The assigned mediator, or every active mediator while nobody has picked it up."""
    if dispute.mediator is not None:
        return [dispute.mediator]
    return active_mediators()


def active_mediators() -> list[User]:
    """Every active mediator (who is told about a case nobody has picked up)."""
    return list(User.objects.filter(role=User.Role.MEDIATOR, is_staff=True, is_active=True))


def party_users(dispute: Dispute, party: str) -> list[User]:
    """The people who act for the buyer or the supplier side of this dispute."""
    if party == P.BUYER:
        return parties.order_buyers(dispute.order)
    return parties.order_supplier_staff(dispute.order)


def other_party(party: str) -> str:
    return P.SUPPLIER if party == P.BUYER else P.BUYER


def dispute_tell(dispute: Dispute, users: Iterable[User], title: str, body: str = "") -> None:
    """Notify the parties' people, linking to the dispute page."""
    notify(
        users=users,
        title=f"{dispute.reference} ({dispute.order.reference}): {title}",
        body=body,
        url=dispute.get_absolute_url(),
    )


def dispute_tell_parties(dispute: Dispute, title: str, body: str = "") -> None:
    """Notify both sides (buyers first, then the supplier's staff)."""
    for users in (parties.order_buyers(dispute.order), parties.order_supplier_staff(dispute.order)):
        dispute_tell(dispute, users, title, body)


def dispute_tell_mediators(dispute: Dispute, title: str, body: str = "") -> None:
    """Notify the mediator(s), linking to the case in the admin where they work."""
    notify(
        users=dispute_mediators(dispute),
        title=f"{dispute.reference}: {title}",
        body=body,
        url=reverse("admin:disputes_dispute_change", args=[dispute.pk]),
    )


def when(moment: datetime | None) -> str:
    """A deadline as people read it in notifications: each in their own time zone."""
    return moment_token(moment)


def when_here(moment: datetime | None) -> str:
    """A deadline in a message shown to the person acting now (their zone, from the request)."""
    return local_text(moment, timezone.get_current_timezone_name()) if moment else "—"


# ---------------------------------------------------------------------------------------------
# Locks, the move, the timers.
# ---------------------------------------------------------------------------------------------


def dispute_lock(dispute: Dispute | int) -> Dispute:
    """Lock the dispute row, NO KEY, so rows that merely point at it (a capture hook writing a
    timeline event) are not blocked; the order and its parties come along unlocked."""
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
        raise NotFound("No such dispute.", code=DisputeErrorCode.DISPUTE_NOT_FOUND)
    return found


def escrow_and_order_lock(order: Order | int) -> Order:
    """Lock the order's escrow, then the order (the order every money path and the payments
    capture hook use), so a dispute service never waits on them in the opposite order."""
    from orders.services import order_lock_for_update

    return order_lock_for_update(order=order if isinstance(order, int) else order.pk)


def dispute_event_publish(dispute: Dispute, action: str, payload: dict[str, Any]) -> None:
    """The domain event `dispute.<action>`, seen by both organisations."""
    event_publish(
        topic=f"dispute.{action}",
        subject_type="dispute",
        subject_id=dispute.pk,
        audience=[dispute.order.buyer_organisation_id, dispute.order.supplier.organisation_id],
        payload=payload,
    )


def dispute_move(
    dispute: Dispute,
    row: Transition,
    *,
    party: str,
    actor: User | None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> DisputeEvent:
    """Apply a checked transition to a locked dispute: status and timeline row (the kernel's
    move), then the domain event."""
    event = LIFECYCLE.move(dispute, row, party=party, actor=actor, note=note, data=data)
    dispute_event_publish(
        dispute,
        row.action,
        {
            "dispute": dispute.reference,
            "order": dispute.order.reference,
            "action": row.action,
            "from_status": event.from_status,
            "to_status": event.to_status,
            "actor": party,
            **(data or {}),
        },
    )
    return event


def dispute_clear_timers(dispute: Dispute) -> None:
    """A closed dispute waits for nobody: its answer, escalation and pickup deadlines go."""
    dispute.supplier_response_due_at = None
    dispute.escalation_due_at = None
    dispute.pickup_due_at = None


# ---------------------------------------------------------------------------------------------
# Evidence files.
# ---------------------------------------------------------------------------------------------


def evidence_files_store(files: Sequence[File]) -> list[Any]:
    """Check EVERY file first (so a bad one refuses all), then store them privately (the
    kernel's `uploads_store_all`, which the pre-shipment inspection reports use too)."""
    return uploads_store_all(
        files=files,
        folder=EVIDENCE_FOLDER,
        max_files=settings.DISPUTES["MAX_FILES_PER_UPLOAD"],
        too_many_code=DisputeErrorCode.TOO_MANY_FILES,
    )


def evidence_create(
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


# ---------------------------------------------------------------------------------------------
# Sweeps (Celery beat).
# ---------------------------------------------------------------------------------------------


def disputes_sweep(
    *, name: str, noun: str, due: Callable[[datetime], QuerySet], handle: Callable[[int], bool]
) -> int:
    """The kernel's `sweep_due` with the disputes batch size; a row that fails is skipped for this
    run and reported to staff as a SystemAlert (source "disputes.<name>")."""

    def alert(pk: int, error: Exception) -> None:
        message = error.message if isinstance(error, DomainError) else repr(error)
        SystemAlert.objects.create(
            source=f"disputes.{name}",
            message=f"{noun} {pk}: {message}"[:2000],
            created_at=clock.now(),
        )

    return sweep_due(
        due=due,
        handle=handle,
        batch_size=settings.TRADE_ASSURANCE["SWEEP_BATCH_SIZE"],
        name=f"disputes.{name}",
        on_failure=alert,
    )


@dataclass
class DisputeMoved:
    """One claimed dispute, the row it takes, and what the batch writes for it."""

    dispute: Dispute
    row: Transition
    from_status: str
    changes: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # (who: "parties" | "mediators", title, body) for each notification of this dispute
    tells: list[tuple[str, str, str]] = field(default_factory=list)


def disputes_move_many(moves: Sequence[DisputeMoved], *, now: datetime) -> int:
    """Write a batch of checked transitions of locked disputes (a set-based sweep): one
    compare-and-swap `UPDATE` per set of identical changes, one timeline row each, their domain
    events and notifications, in the caller's transaction."""
    if not moves:
        return 0
    rows = []
    for move in moves:
        changes = dict(move.changes)
        to_status = LIFECYCLE.target_for(move.dispute, move.row)
        if to_status != move.from_status:
            changes["status"] = to_status
        for name, value in changes.items():
            setattr(move.dispute, name, value)
        rows.append((move.dispute.pk, move.from_status, changes))
    update_claimed_in_groups(Dispute, rows)
    bulk_insert(
        DisputeEvent,
        [
            "dispute_id",
            "action",
            "actor_party",
            "actor_id",
            "from_status",
            "to_status",
            "note",
            "data",
            "created_at",
        ],
        [
            (
                move.dispute.pk,
                move.row.action,
                P.SYSTEM,
                None,
                move.from_status,
                move.dispute.status,
                move.note,
                move.data,
                now,
            )
            for move in moves
        ],
    )
    events_publish_many(
        [
            EventSpec(
                topic=f"dispute.{move.row.action}",
                subject_type="dispute",
                subject_id=move.dispute.pk,
                audience=(
                    move.dispute.order.buyer_organisation_id,
                    parties.supplier_organisation_id(move.dispute.order),
                ),
                payload={
                    "dispute": move.dispute.reference,
                    "order": move.dispute.order.reference,
                    "action": move.row.action,
                    "from_status": move.from_status,
                    "to_status": move.dispute.status,
                    "actor": P.SYSTEM,
                    **move.data,
                },
            )
            for move in moves
        ]
    )
    people = parties.orders_people(move.dispute.order for move in moves)
    unassigned: list[User] | None = None
    notices = []
    # Each URL resolved once per batch (`reverse` costs ~0.1 ms a call), then filled per dispute.
    page_url = _url_pattern("disputes:detail")
    admin_url = _url_pattern("admin:disputes_dispute_change")
    for move in moves:
        dispute = move.dispute
        buyers, staff = people[dispute.order_id]
        for who, title, body in move.tells:
            if who == "mediators":
                mediators: Sequence[User | None]
                if dispute.mediator_id is not None:
                    mediators = [dispute.mediator]
                else:
                    if unassigned is None:
                        unassigned = active_mediators()
                    mediators = unassigned
                notices.append(
                    NoticeSpec(
                        users=tuple(mediators),
                        title=f"{dispute.reference}: {title}",
                        body=body,
                        url=admin_url.format(dispute.pk),
                    )
                )
                continue
            for users in (buyers, staff):
                notices.append(
                    NoticeSpec(
                        users=tuple(users),
                        title=f"{dispute.reference} ({dispute.order.reference}): {title}",
                        body=body,
                        url=page_url.format(dispute.pk),
                    )
                )
    notify_many(notices)
    return len(moves)


def _url_pattern(name: str) -> str:
    """The URL called `name` for one pk argument, as a `str.format` pattern."""
    marker = 987654321
    return reverse(name, args=[marker]).replace(str(marker), "{}")


def disputes_sweep_batches(
    *,
    name: str,
    noun: str,
    claim: Callable[[datetime, int, int], Sequence[Dispute]],
    apply: Callable[[Sequence[Dispute], datetime], int],
    one_by_one: Callable[[int], bool],
) -> int:
    """The kernel's set-based `sweep_batches` with the disputes batch size; a batch that fails
    goes row by row through `one_by_one`, where a failing row is reported to staff as a
    SystemAlert (source "disputes.<name>")."""
    return sweep_batches(
        BatchSweep(
            name=f"disputes.{name}",
            claim=claim,
            apply=apply,
            key=lambda dispute: dispute.pk,
            one_by_one=one_by_one,
            on_failure=_alert(name, noun),
        ),
        batch_size=settings.TRADE_ASSURANCE["SWEEP_SET_BATCH_SIZE"],
    )


def _alert(name: str, noun: str) -> Callable[[int, Exception], None]:
    def alert(pk: int, error: Exception) -> None:
        message = error.message if isinstance(error, DomainError) else repr(error)
        SystemAlert.objects.create(
            source=f"disputes.{name}",
            message=f"{noun} {pk}: {message}"[:2000],
            created_at=clock.now(),
        )

    return alert
