"""Reads of disputes, shared by the pages, the admin and the API: every queryset is already
filtered to what the user may see, with the joins a page needs (constant query counts)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet

from accounts.models import Organisation, User
from accounts.selectors import inspection_companies_approved
from accounts.team import Capability, team_allows
from disputes.error_codes import DisputeErrorCode
from disputes.models import (
    MEDIATION_STATUSES,
    OPEN_STATUSES,
    CitedMessage,
    Dispute,
    DisputeEvent,
    DisputeMessage,
    DisputeParty,
    DisputeStatus,
    Evidence,
    EvidenceRequest,
    Inspection,
    Proposal,
)
from disputes.transitions import transition_for
from orders.models import ContractLineItem, Order
from tradeassure.core import clock
from tradeassure.core.errors import NotFound

S = DisputeStatus
P = DisputeParty


def _base() -> QuerySet[Dispute]:
    return Dispute.objects.select_related(
        "order__supplier__organisation", "order__buyer_organisation", "mediator"
    )


def disputes_visible_to(user) -> QuerySet[Dispute]:
    """Disputes the user may see: their buyer organisation's or supplier's; all for mediators
    and staff with the view permission. Inspectors see disputes through their inspections."""
    if not user.is_authenticated or not user.is_active:
        return Dispute.objects.none()
    if user.is_staff and user.has_perm("disputes.view_dispute"):
        return _base()
    if user.organisation_id is None:
        return Dispute.objects.none()
    if user.is_buyer:
        return _base().filter(order__buyer_organisation_id=user.organisation_id)
    if user.is_supplier_staff:
        return _base().filter(order__supplier__organisation_id=user.organisation_id)
    return Dispute.objects.none()


def dispute_list(*, user, status_filter: str = "") -> QuerySet[Dispute]:
    disputes = disputes_visible_to(user)
    if status_filter == "open":
        disputes = disputes.filter(status__in=OPEN_STATUSES)
    elif status_filter in S.values:
        disputes = disputes.filter(status=status_filter)
    return disputes.order_by("-opened_at", "-id")


def _with_everything(queryset: QuerySet[Dispute]) -> QuerySet[Dispute]:
    return queryset.select_related(
        "order__current_version", "opened_by", "closed_by"
    ).prefetch_related(
        Prefetch("events", queryset=DisputeEvent.objects.select_related("actor").order_by("id")),
        Prefetch(
            "messages", queryset=DisputeMessage.objects.select_related("author").order_by("id")
        ),
        Prefetch(
            "proposals", queryset=Proposal.objects.select_related("proposed_by").order_by("id")
        ),
        Prefetch(
            "evidence", queryset=Evidence.objects.select_related("uploaded_by").order_by("id")
        ),
        Prefetch("evidence_requests", queryset=EvidenceRequest.objects.order_by("id")),
        Prefetch(
            "cited_messages",
            queryset=CitedMessage.objects.select_related("message", "cited_by").order_by("id"),
        ),
        Prefetch(
            "inspections",
            queryset=Inspection.objects.select_related("organisation", "fee_payment").order_by(
                "id"
            ),
        ),
        Prefetch(
            "order__current_version__items",
            queryset=ContractLineItem.objects.order_by("position"),
        ),
    )


def dispute_for_user(*, user, pk: int) -> Dispute:
    """One dispute with everything its page shows, or NotFound for anyone who may not see it."""
    dispute = _with_everything(disputes_visible_to(user)).filter(pk=pk).first()
    if dispute is None:
        raise NotFound("No such dispute.", code=DisputeErrorCode.DISPUTE_NOT_FOUND)
    return dispute


def dispute_for_staff(*, pk: int) -> Dispute | None:
    return _with_everything(_base()).filter(pk=pk).first()


def dispute_open_for_order(*, order: Order) -> Dispute | None:
    return Dispute.objects.filter(order=order, status__in=OPEN_STATUSES).first()


def disputes_for_order(*, order: Order, user) -> list[Dispute]:
    if not order.ever_disputed:
        # Opening a dispute marks its order in the same transaction: none to look for.
        return []
    return list(disputes_visible_to(user).filter(order=order).order_by("-opened_at", "-id"))


def evidence_for_user(*, user, dispute_pk: int, pk: int) -> Evidence:
    """A file, for the parties, mediators/staff, and the inspector of the dispute; else NotFound."""
    evidence = (
        Evidence.objects.filter(pk=pk, dispute_id=dispute_pk)
        .filter(dispute__in=disputes_visible_to(user))
        .first()
    )
    if evidence is None and user.is_authenticated and user.is_inspector and user.organisation_id:
        evidence = (
            Evidence.objects.filter(pk=pk, dispute_id=dispute_pk)
            .filter(
                dispute__inspections__organisation_id=user.organisation_id,
                dispute__inspections__state__in=[
                    Inspection.State.ASSIGNED,
                    Inspection.State.REPORTED,
                ],
            )
            .first()
        )
    if evidence is None:
        raise NotFound("No such file.", code=DisputeErrorCode.EVIDENCE_NOT_FOUND)
    return evidence


def inspections_for_inspector(*, user) -> QuerySet[Inspection]:
    """The user's inspection company's assignments (paid ones first, then the rest)."""
    if not (user.is_authenticated and user.is_inspector and user.organisation_id):
        return Inspection.objects.none()
    return (
        Inspection.objects.filter(organisation_id=user.organisation_id)
        .exclude(state=Inspection.State.AWAITING_FEE)
        .select_related("dispute__order__supplier", "dispute__order__buyer_organisation")
        .order_by("state", "-fee_paid_at", "-id")
    )


def inspection_for_inspector(*, user, pk: int) -> Inspection:
    inspection = (
        inspections_for_inspector(user=user)
        .select_related("dispute__order__current_version")
        .prefetch_related(
            Prefetch(
                "dispute__order__current_version__items",
                queryset=ContractLineItem.objects.order_by("position"),
            ),
            Prefetch(
                "dispute__evidence",
                queryset=Evidence.objects.select_related("uploaded_by").order_by("id"),
            ),
        )
        .filter(pk=pk)
        .first()
    )
    if inspection is None:
        raise NotFound("No such inspection.", code=DisputeErrorCode.INSPECTION_NOT_FOUND)
    return inspection


def inspection_organisations() -> QuerySet[Organisation]:
    """The approved inspection companies (the same list buyers book from before shipment)."""
    return inspection_companies_approved()


def mediation_queue(*, mine_for: User | None = None) -> QuerySet[Dispute]:
    """Disputes in mediation, the most urgent pick-up first (SLA due, then oldest)."""
    queue = _base().filter(status__in=MEDIATION_STATUSES)
    if mine_for is not None:
        queue = queue.filter(mediator=mine_for)
    return queue.order_by(
        F("pickup_due_at").asc(nulls_last=True), "-flagged_for_decision", "escalated_at", "id"
    )


def pickup_overdue(dispute: Dispute, now: datetime | None = None) -> bool:
    now = now or clock.now()
    return (
        dispute.status == S.ESCALATED
        and dispute.pickup_due_at is not None
        and dispute.pickup_due_at <= now
    )


@dataclass(frozen=True)
class PageActions:
    """What the dispute page offers this user now (the services check again on POST)."""

    party: str | None
    message: bool = False
    propose: bool = False
    reject: bool = False
    accept: Proposal | None = None
    add_evidence: bool = False
    withdraw: bool = False
    escalate: bool = False
    escalate_from: datetime | None = None
    pay_inspection: Inspection | None = None
    open_request: EvidenceRequest | None = None


def dispute_page_actions(*, dispute: Dispute, user) -> PageActions:
    """Uses the prefetched proposals/inspections/requests: no queries of its own."""
    from disputes.services import party_of

    party = party_of(dispute=dispute, user=user)
    if party not in (P.BUYER, P.SUPPLIER) or not team_allows(user, Capability.DISPUTE):
        return PageActions(party=party)

    def can(action: str) -> bool:
        return transition_for(dispute.status, action, party) is not None

    open_proposal = next(
        (p for p in dispute.proposals.all() if p.state == Proposal.State.OPEN), None
    )
    others = open_proposal if open_proposal and open_proposal.party != party else None
    now = clock.now()
    pay = None
    if party == P.BUYER:
        pay = next(
            (i for i in dispute.inspections.all() if i.state == Inspection.State.AWAITING_FEE),
            None,
        )
    request = next(
        (
            r
            for r in dispute.evidence_requests.all()
            if r.state == EvidenceRequest.State.OPEN and r.requested_from == party
        ),
        None,
    )
    escalate = can("escalate")
    return PageActions(
        party=party,
        message=can("message"),
        propose=can("propose"),
        reject=can("reject") and others is not None,
        accept=others if can("accept") else None,
        add_evidence=can("add_evidence"),
        withdraw=can("withdraw"),
        escalate=escalate
        and (dispute.buyer_may_escalate_at is None or dispute.buyer_may_escalate_at <= now),
        escalate_from=dispute.buyer_may_escalate_at if escalate else None,
        pay_inspection=pay,
        open_request=request,
    )


def dispute_needs_action_q(*, party: str) -> Q:
    """Open disputes waiting for this party (list filter)."""
    if party == P.SUPPLIER:
        return Q(status=S.AWAITING_SUPPLIER) | Q(
            status__in=OPEN_STATUSES,
            evidence_requests__state=EvidenceRequest.State.OPEN,
            evidence_requests__requested_from=P.SUPPLIER,
        )
    return Q(
        status__in=OPEN_STATUSES,
        evidence_requests__state=EvidenceRequest.State.OPEN,
        evidence_requests__requested_from=P.BUYER,
    ) | Q(inspections__state=Inspection.State.AWAITING_FEE)


# --- the dispute page's progress ---------------------------------------------------------------


@dataclass(frozen=True)
class DisputeStep:
    key: str
    label: str
    state: str  # "done" | "current" | "todo" | "stopped"


_DISPUTE_STEPS = (
    ("opened", "Opened"),
    ("answer", "Supplier answers"),
    ("negotiation", "Negotiation"),
    ("mediation", "Mediator"),
    ("resolved", "Resolved"),
)
_DISPUTE_AT: dict[str, int] = {
    DisputeStatus.AWAITING_SUPPLIER: 1,
    DisputeStatus.NEGOTIATING: 2,
    DisputeStatus.ESCALATED: 3,
    DisputeStatus.UNDER_REVIEW: 3,
    DisputeStatus.AWAITING_INSPECTION: 3,
    DisputeStatus.RESOLVED: 5,
}


def dispute_progress(dispute: Dispute) -> list[DisputeStep]:
    """Opened → supplier answers → negotiation → mediator → resolved, from the status alone (no
    query); a withdrawn dispute stops where it was, a settled one skips the mediator."""
    if dispute.status == DisputeStatus.CANCELLED:
        reached = 2 if dispute.escalated_at is None else 4
        steps = [DisputeStep(k, label, "done") for k, label in _DISPUTE_STEPS[:reached]]
        return [*steps, DisputeStep("cancelled", "Withdrawn or cancelled", "stopped")]
    current = _DISPUTE_AT.get(dispute.status, 1)
    steps = []
    for index, (key, label) in enumerate(_DISPUTE_STEPS):
        if index < current or current == len(_DISPUTE_STEPS):
            state = "done"
        elif index == current:
            state = "current"
        else:
            state = "todo"
        if key == "mediation" and current == 5 and dispute.escalated_at is None:
            label, state = "Settled between you (no mediator)", "done"
        steps.append(DisputeStep(key, label, state))
    return steps


def orders_waiting_in_dispute(*, party: str) -> Q:
    """ORDER_NEEDS_ACTION_HOOKS entry: a Q on orders whose open dispute waits for `party` (the
    other side's proposal is open, or the supplier has not answered the claim yet), so the
    orders' "Needs you" list includes them."""
    other = DisputeParty.SUPPLIER if party == DisputeParty.BUYER else DisputeParty.BUYER
    open_here = {"dispute__order_id": OuterRef("pk"), "dispute__status__in": OPEN_STATUSES}
    waiting = Q(
        Exists(Proposal.objects.filter(**open_here, state=Proposal.State.OPEN, party=other))
    )
    if party == DisputeParty.SUPPLIER:
        waiting |= Q(
            Exists(
                Dispute.objects.filter(
                    order_id=OuterRef("pk"), status=DisputeStatus.AWAITING_SUPPLIER
                )
            )
        )
    return waiting


def open_dispute_of_order_for_user(*, user, order_pk: int) -> Dispute:
    """The open dispute of an order the user may see (to cite a message in it), or NotFound."""
    dispute = (
        disputes_visible_to(user)
        .filter(order_id=order_pk, status__in=OPEN_STATUSES)
        .order_by("-opened_at")
        .first()
    )
    if dispute is None:
        raise NotFound("This order has no open dispute.", code=DisputeErrorCode.DISPUTE_NOT_FOUND)
    return dispute
