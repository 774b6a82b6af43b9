"""Property tests: random sequences of money operations keep every ledger invariant."""

import json
import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from payments import selectors, services
from payments.models import Account, Entry, LedgerTransaction, ProviderEvent
from payments.providers.sandbox import SIGNATURE_HEADER, sign
from tests.factories import BuyerFactory, OrganisationFactory
from tradeassure.core.errors import Conflict
from tradeassure.core.money import MINOR_UNITS, release_fee

pytestmark = pytest.mark.django_db

KEYS = st.integers(min_value=0, max_value=3)


def amounts(max_minor: int = 60_000) -> st.SearchStrategy[int]:
    return st.integers(min_value=1, max_value=max_minor)


MOVES = st.one_of(
    st.tuples(st.just("release"), amounts(25_000), KEYS),
    st.tuples(st.just("refund"), amounts(25_000), KEYS),
)
OPERATIONS = st.one_of(
    MOVES,
    MOVES,
    MOVES,
    st.tuples(st.just("pay"), amounts(), st.sampled_from(["card", "bank_transfer"]), st.booleans()),
    st.tuples(st.just("pay_inspection_fee"), amounts(5_000)),
    st.tuples(st.just("wrong_transfer"), amounts()),
    st.tuples(st.just("release"), amounts(25_000), KEYS),
    st.tuples(st.just("refund"), amounts(25_000), KEYS),
    st.tuples(st.just("freeze")),
    st.tuples(st.just("unfreeze")),
    st.tuples(st.just("settle_inspection"), st.booleans(), KEYS),
    st.tuples(st.just("payout"), amounts(), KEYS),
    st.tuples(st.just("deliver"), st.booleans()),
    st.tuples(st.just("replay_event"), st.integers(min_value=0, max_value=50)),
)


def snapshot() -> tuple:
    return (
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        tuple(Account.objects.order_by("pk").values_list("balance", flat=True)),
    )


def check_invariants(reference: str, releases: list[Decimal], currency: str) -> None:
    report = selectors.ledger_verify()
    assert report.ok, report.violations
    summary = selectors.escrow_summary(escrow_reference=reference)
    assert summary.held >= 0
    assert summary.held == summary.captured - summary.released - summary.refunded
    assert summary.released + summary.refunded <= summary.captured
    # the fee is charged per release, on the released amount only
    assert summary.fees == sum((release_fee(r, currency) for r in releases), Decimal(0))
    for account in Account.objects.exclude(kind__in=["provider_clearing", "supplier_debt"]):
        assert account.balance >= 0, account.key


@settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    currency=st.sampled_from(["USD", "JPY"]),
    operations=st.lists(OPERATIONS, min_size=3, max_size=25),
    # most sequences start with money in escrow, so releases and refunds can apply
    opening_payment=st.one_of(st.just(0), st.integers(min_value=20_000, max_value=100_000)),
)
def test_random_operations_keep_the_ledger_sound(
    django_capture_on_commit_callbacks, client, currency, operations, opening_payment
):
    if opening_payment:
        operations = [("pay", opening_payment, "card", True), *operations]
    savepoint = transaction.savepoint()
    try:
        run_sequence(django_capture_on_commit_callbacks, client, currency, operations)
    finally:
        transaction.savepoint_rollback(savepoint)


def run_sequence(capture_callbacks, client, currency, operations) -> None:
    places = MINOR_UNITS[currency]
    buyer_org = OrganisationFactory(kind="buyer")
    supplier_org = OrganisationFactory(kind="supplier")
    buyer = BuyerFactory(organisation=buyer_org)
    reference = f"order:{uuid.uuid4().hex[:12]}"
    services.escrow_open(
        escrow_reference=reference,
        currency=currency,
        buyer_organisation=buyer_org,
        supplier_organisation=supplier_org,
        description="property test",
    )
    pending: list = []  # after-commit work (provider calls, webhooks) not yet run
    releases: list[Decimal] = []
    applied: dict[str, tuple] = {}  # idempotency key -> (operation, amount) that applied

    def money(minor: int) -> Decimal:
        return Decimal(minor).scaleb(-places)

    def deferred(function, *, now: bool = False, **kwargs):
        """Run a service; its after-commit work runs now, or waits for a "deliver" step."""
        with capture_callbacks(execute=now) as callbacks:
            result = function(**kwargs)
        if not now:
            pending.extend(callbacks)
        return result

    for operation in operations:
        name = operation[0]
        summary = selectors.escrow_summary(escrow_reference=reference)
        if name in ("pay", "pay_inspection_fee", "wrong_transfer"):
            method = operation[2] if name == "pay" else "bank_transfer"
            now = operation[3] if name == "pay" else False
            amount = money(operation[1])
            payment = services.payment_start(
                escrow_reference=reference,
                purpose="inspection_fee" if name == "pay_inspection_fee" else "initial",
                amount=amount,
                currency=currency,
                method=method,
                payer_organisation=buyer_org,
                idempotency_key=str(uuid.uuid4()),
            )
            if method == "card":
                deferred(
                    services.payment_card_submit,
                    payment=payment,
                    card_number="4242424242424242",
                    actor=buyer,
                    now=now,
                )
            else:
                arriving = amount + (money(1) if name == "wrong_transfer" else 0)
                deferred(
                    services.payment_transfer_simulate,
                    payment=payment,
                    amount=arriving,
                    currency=currency,
                    actor=buyer,
                    now=now,
                )
        elif name in ("release", "refund"):
            amount, key = money(operation[1]), f"{name}-{operation[2]}"
            before = snapshot()
            expected_replay = applied.get(key) == (name, amount)
            try:
                if name == "release":
                    deferred(
                        services.escrow_release,
                        escrow_reference=reference,
                        amount=amount,
                        idempotency_key=key,
                    )
                else:
                    deferred(
                        services.escrow_refund,
                        escrow_reference=reference,
                        amount=amount,
                        idempotency_key=key,
                        reason="property",
                    )
            except Conflict as error:
                # refused only for a reason that holds: frozen, or more than held
                assert not expected_replay
                assert error.code in ("escrow_frozen", "insufficient_escrow")
                note_event(f"{name} refused: {error.code}")
                if error.code == "escrow_frozen":
                    assert summary.frozen
                else:
                    assert amount > summary.held
                assert snapshot() == before
            except services.Unprocessable:
                # the key was used for another operation or amount: nothing moves
                assert key in applied and applied[key] != (name, amount)
                assert snapshot() == before
            else:
                if expected_replay:
                    assert snapshot() == before
                else:
                    assert key not in applied
                    assert not summary.frozen and amount <= summary.held
                    applied[key] = (name, amount)
                    note_event(f"{name} applied")
                    if name == "release":
                        releases.append(amount)
        elif name == "freeze":
            services.escrow_freeze(escrow_reference=reference)
        elif name == "unfreeze":
            services.escrow_unfreeze(escrow_reference=reference)
        elif name == "settle_inspection":
            before = snapshot()
            try:
                deferred(
                    services.inspection_fee_settle,
                    escrow_reference=reference,
                    supplier_at_fault=operation[1],
                    idempotency_key=f"settle-{operation[2]}",
                )
            except Conflict:
                assert summary.inspection_fee_held == 0
                assert snapshot() == before
        elif name == "payout":
            balances = {
                b.currency: b for b in selectors.supplier_balances(organisation=supplier_org)
            }
            available = balances[currency].available if currency in balances else Decimal(0)
            amount = money(operation[1])
            before = snapshot()
            try:
                deferred(
                    services.payout_request,
                    organisation=supplier_org,
                    currency=currency,
                    amount=amount,
                    idempotency_key=f"payout-{uuid.uuid4()}",
                )
            except Conflict:
                assert amount > available
                assert snapshot() == before
        elif name == "deliver":
            batch = list(reversed(pending)) if operation[1] else list(pending)
            pending.clear()
            with capture_callbacks(execute=True):
                for callback in batch:
                    callback()
        elif name == "replay_event":
            events = list(ProviderEvent.objects.order_by("pk"))
            if events:
                stored = events[operation[1] % len(events)]
                before = snapshot()
                body = json.dumps(stored.payload).encode()
                response = client.post(
                    "/payments/webhooks/sandbox/",
                    data=body,
                    content_type="application/json",
                    headers={SIGNATURE_HEADER: sign(body)},
                )
                assert response.status_code == 200
                assert response.json()["duplicate"] is True
                assert snapshot() == before
        check_invariants(reference, releases, currency)

    # finally, once every pending provider answer has arrived, nothing is left in transit
    with capture_callbacks(execute=True):
        for callback in pending:
            callback()
    check_invariants(reference, releases, currency)
    in_transit = Account.objects.filter(
        kind__in=["refunds_in_transit", "payouts_in_transit", "unapplied_funds"]
    ).values_list("balance", flat=True)
    assert all(balance == 0 for balance in in_transit)
