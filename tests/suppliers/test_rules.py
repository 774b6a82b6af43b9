"""Eligibility rules, the limit formula, metrics and automatic suspension (services + selectors)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from suppliers import selectors
from suppliers.models import (
    Supplier,
    SupplierMetrics,
    SupplierOrderRecord,
    SupplierStatusChange,
    TradeAssuranceStatus,
    VerificationStatus,
)
from suppliers.services import (
    supplier_assert_can_take_order,
    supplier_metrics_recompute,
    supplier_order_record_sync,
)
from tests.suppliers.factories import (
    EligibleSupplierFactory,
    OrderRecordFactory,
    SupplierFactory,
    TradeAssuredSupplierFactory,
)
from tradeassure.core import clock
from tradeassure.core.errors import NotAllowed, Unprocessable, ValidationFailed

pytestmark = pytest.mark.django_db


def _failed_codes(supplier: Supplier) -> set[str]:
    return {c.code for c in selectors.supplier_failed_rules(supplier=supplier)}


# --- Eligibility: one test per rule ------------------------------------------------------------


def test_an_eligible_supplier_passes_every_rule():
    supplier = EligibleSupplierFactory()
    assert _failed_codes(supplier) == set()


def test_free_membership_fails_the_gold_rule():
    supplier = EligibleSupplierFactory(membership="free", membership_expires_on=None)
    assert _failed_codes(supplier) == {"gold_membership"}


def test_expired_gold_membership_fails_the_gold_rule():
    yesterday = clock.now().date() - timedelta(days=1)
    supplier = EligibleSupplierFactory(membership_expires_on=yesterday)
    checks = {c.code: c for c in selectors.supplier_eligibility_checks(supplier=supplier)}
    assert not checks["gold_membership"].passed
    assert "expired" in checks["gold_membership"].detail


def test_gold_expiring_today_still_counts():
    supplier = EligibleSupplierFactory(membership_expires_on=clock.now().date())
    assert _failed_codes(supplier) == set()


@pytest.mark.parametrize("country", ["US", "DE", "VN"])
def test_a_country_outside_the_allowed_list_fails(country):
    supplier = EligibleSupplierFactory(country=country)
    assert _failed_codes(supplier) == {"country"}


def test_the_allowed_countries_are_a_setting(settings):
    settings.TRADE_ASSURANCE = {**settings.TRADE_ASSURANCE, "ELIGIBLE_COUNTRIES": ["VN"]}
    assert _failed_codes(EligibleSupplierFactory(country="VN")) == set()
    assert _failed_codes(EligibleSupplierFactory(country="CN")) == {"country"}


@pytest.mark.parametrize(
    "status",
    [VerificationStatus.NOT_SUBMITTED, VerificationStatus.PENDING, VerificationStatus.REJECTED],
)
def test_verification_not_approved_fails(status):
    supplier = EligibleSupplierFactory(verification_status=status)
    assert _failed_codes(supplier) == {"verification"}


def test_a_suspended_supplier_fails_the_suspension_rule():
    supplier = TradeAssuredSupplierFactory(
        ta_status=TradeAssuranceStatus.SUSPENDED, ta_status_reason="late shipments"
    )
    assert _failed_codes(supplier) == {"not_suspended"}


# --- Limit formula ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volume", "limit"),
    [
        ("0", "10000.00"),  # the floor for a new supplier
        ("60000", "40000.00"),  # 10,000 + 0.5 x 60,000 (the README's worked example)
        ("980000", "500000.00"),  # exactly at the cap
        ("5000000", "500000.00"),  # capped
    ],
)
def test_the_limit_formula(volume, limit):
    assert selectors.trade_assurance_limit_for(Decimal(volume)) == Decimal(limit)


def test_the_limit_formula_follows_its_settings(settings):
    settings.SUPPLIERS = {
        **settings.SUPPLIERS,
        "LIMIT_FLOOR_USD": Decimal("5000"),
        "LIMIT_VOLUME_FACTOR": Decimal("1"),
        "LIMIT_CAP_USD": Decimal("8000"),
    }
    assert selectors.trade_assurance_limit_for(Decimal("2000")) == Decimal("7000.00")
    assert selectors.trade_assurance_limit_for(Decimal("9000")) == Decimal("8000.00")


def test_other_currencies_convert_at_the_reference_rate():
    assert selectors.amount_in_usd(Decimal("1000.00"), "EUR") == Decimal("1080.00")
    assert selectors.amount_in_usd(Decimal("100000"), "JPY") == Decimal("670.00")


def test_recompute_grows_the_limit_with_completed_volume_and_records_it():
    # given a trade-assured supplier at the floor with 60,000 USD of completed orders
    supplier = TradeAssuredSupplierFactory()
    for _ in range(3):
        OrderRecordFactory(supplier=supplier, amount=Decimal("20000.00"))

    # when its metrics are recomputed
    supplier_metrics_recompute(supplier=supplier)

    # then the limit follows the formula and the change is recorded with who (the system) and why
    supplier.refresh_from_db()
    assert supplier.ta_limit_usd == Decimal("40000.00")
    change = SupplierStatusChange.objects.get(supplier=supplier, field="limit")
    assert (change.from_value, change.to_value, change.actor) == ("10000.00", "40000.00", None)


# --- supplier_assert_can_take_order ---------------------------------------------------------


def test_an_order_within_the_limit_is_accepted():
    supplier = TradeAssuredSupplierFactory()
    supplier_assert_can_take_order(supplier=supplier, amount=Decimal("10000.00"), currency="USD")


def test_an_order_over_what_is_left_is_refused_with_the_amount_left():
    # given a 10,000 USD limit with 7,000 USD already open
    supplier = TradeAssuredSupplierFactory()
    OrderRecordFactory(supplier=supplier, status="open", amount=Decimal("7000.00"))

    # when a 3,000.01 USD order is checked, then it is refused saying 3,000 is left
    with pytest.raises(Unprocessable) as refused:
        supplier_assert_can_take_order(supplier=supplier, amount=Decimal("3000.01"), currency="USD")
    assert refused.value.code == "trade_assurance_limit_exceeded"
    assert "more than the USD 3,000.00 " in refused.value.message
    assert "limit is USD 10,000.00" in refused.value.message
    assert "≈" not in refused.value.message and refused.value.message.count("USD 3,000.01") == 1
    # and exactly what is left still fits
    supplier_assert_can_take_order(supplier=supplier, amount=Decimal("3000.00"), currency="USD")


def test_exposure_counts_other_currencies_in_usd():
    # given 9,000 USD open, 1,000 USD left; a 1,000 EUR order is 1,080 USD
    supplier = TradeAssuredSupplierFactory()
    OrderRecordFactory(supplier=supplier, status="open", amount=Decimal("9000.00"))
    with pytest.raises(Unprocessable):
        supplier_assert_can_take_order(supplier=supplier, amount=Decimal("1000.00"), currency="EUR")
    supplier_assert_can_take_order(supplier=supplier, amount=Decimal("925.00"), currency="EUR")


def test_closed_orders_do_not_count_as_exposure():
    supplier = TradeAssuredSupplierFactory()
    for status in ("completed", "cancelled", "refunded"):
        OrderRecordFactory(supplier=supplier, status=status, amount=Decimal("9000.00"))
    supplier_assert_can_take_order(supplier=supplier, amount=Decimal("10000.00"), currency="USD")


def test_an_order_already_recorded_can_be_left_out_of_exposure():
    supplier = TradeAssuredSupplierFactory()
    OrderRecordFactory(
        supplier=supplier, status="open", amount=Decimal("8000.00"), order_reference="order:1"
    )
    supplier_assert_can_take_order(
        supplier=supplier,
        amount=Decimal("8000.00"),
        currency="USD",
        exclude_order_reference="order:1",
    )


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"membership": "free", "membership_expires_on": None}, "gold_membership"),
        ({"country": "US"}, "country"),
        ({"verification_status": "rejected"}, "verification"),
        ({"ta_status": "suspended"}, "not_suspended"),
        ({"ta_status": "none"}, "trade_assurance"),
        ({"ta_status": "pending"}, "trade_assurance"),
    ],
)
def test_an_ineligible_supplier_cannot_take_orders(overrides, rule):
    supplier = TradeAssuredSupplierFactory(**overrides)
    with pytest.raises(NotAllowed) as refused:
        supplier_assert_can_take_order(supplier=supplier, amount=Decimal("1.00"), currency="USD")
    assert refused.value.code == "supplier_not_eligible"
    assert rule in refused.value.fields["rules"]
    assert supplier.legal_name in refused.value.message


def test_a_bad_amount_or_currency_is_a_validation_error():
    supplier = TradeAssuredSupplierFactory()
    with pytest.raises(ValidationFailed):
        supplier_assert_can_take_order(supplier=supplier, amount=Decimal("0"), currency="USD")
    with pytest.raises(ValidationFailed):
        supplier_assert_can_take_order(supplier=supplier, amount=Decimal("10"), currency="XXX")
    for weird in (Decimal("1e999"), Decimal("NaN"), Decimal("Infinity"), 10.5):
        with pytest.raises(ValidationFailed):
            supplier_assert_can_take_order(supplier=supplier, amount=weird, currency="USD")


# --- supplier_order_record_sync ----------------------------------------------------------------


def test_sync_upserts_by_reference_and_recomputes_metrics(django_capture_on_commit_callbacks):
    supplier = TradeAssuredSupplierFactory()
    placed = clock.now() - timedelta(days=3)

    # when an order is reported open, then completed with a rating
    with django_capture_on_commit_callbacks(execute=True):
        supplier_order_record_sync(
            supplier=supplier,
            order_reference="order:42",
            amount=Decimal("500.00"),
            currency="GBP",
            status="open",
            placed_at=placed,
        )
    with django_capture_on_commit_callbacks(execute=True):
        supplier_order_record_sync(
            supplier=supplier,
            order_reference="order:42",
            amount=Decimal("500.00"),
            currency="GBP",
            status="completed",
            placed_at=placed,
            confirmed_at=placed + timedelta(hours=5),
            completed_at=clock.now(),
            rating=4,
        )

    # then there is one record, in USD too, and the metrics snapshot follows it
    record = SupplierOrderRecord.objects.get(order_reference="order:42")
    assert (record.status, record.rating, record.amount_usd) == ("completed", 4, Decimal("635.00"))
    metrics = SupplierMetrics.objects.get(supplier=supplier)
    assert metrics.completed_count == 1
    assert metrics.average_rating == Decimal("4.00")
    assert metrics.median_hours_to_confirm == Decimal("5.0")
    assert metrics.completed_volume_usd == Decimal("635.00")


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "shipped"},
        {"rating": 6},
        {"rating": 0},
        {"currency": "XXX"},
        {"amount": Decimal("-1")},
        {"amount": Decimal("1e999")},
        {"amount": Decimal("NaN")},
        {"order_reference": ""},
    ],
)
def test_sync_refuses_bad_facts_and_changes_nothing(bad):
    supplier = TradeAssuredSupplierFactory()
    facts = {
        "order_reference": "order:7",
        "amount": Decimal("10.00"),
        "currency": "USD",
        "status": "open",
        "placed_at": clock.now(),
        **bad,
    }
    with pytest.raises(ValidationFailed):
        supplier_order_record_sync(supplier=supplier, **facts)
    assert SupplierOrderRecord.objects.count() == 0


# --- Metrics ---------------------------------------------------------------------------------


def test_metrics_over_the_rolling_window():
    # given orders inside the window and one older order that must not count
    supplier = SupplierFactory()
    now = clock.now()
    OrderRecordFactory(supplier=supplier, rating=5)  # completed, on time
    OrderRecordFactory(
        supplier=supplier,
        rating=3,
        shipped_at=now - timedelta(days=5),
        shipment_deadline=now - timedelta(days=8),  # shipped late
    )
    OrderRecordFactory(
        supplier=supplier,
        status="refunded",
        shipped_at=None,
        completed_at=None,
        disputed=True,
        dispute_lost=True,
        shipment_deadline=now - timedelta(days=1),  # never shipped, deadline passed
    )
    OrderRecordFactory(
        supplier=supplier,
        status="cancelled",
        confirmed_at=None,
        shipped_at=None,
        completed_at=None,
        shipment_deadline=None,
    )  # cancelled before confirmation: not the supplier's failure
    OrderRecordFactory(supplier=supplier, placed_at=now - timedelta(days=181), rating=1)

    snapshot = selectors.supplier_metrics_compute(supplier=supplier)

    assert snapshot.orders_count == 4
    assert snapshot.closed_count == 3
    assert snapshot.completion_rate == Decimal("0.6667")
    assert snapshot.on_time_rate == Decimal("0.3333")
    assert snapshot.dispute_rate == Decimal("0.2500")
    assert snapshot.disputes_lost == 1
    assert snapshot.average_rating == Decimal("4.00")
    assert snapshot.median_hours_to_confirm == Decimal("10.0")


def test_a_supplier_without_orders_has_no_rates():
    snapshot = selectors.supplier_metrics_compute(supplier=SupplierFactory())
    assert snapshot.orders_count == 0
    assert snapshot.completion_rate is None
    assert snapshot.on_time_rate is None
    assert snapshot.average_rating is None


# --- Automatic suspension --------------------------------------------------------------------


def _late_orders(supplier, count, **extra):
    now = clock.now()
    for _ in range(count):
        OrderRecordFactory(
            supplier=supplier,
            shipped_at=now - timedelta(days=5),
            shipment_deadline=now - timedelta(days=10),
            **extra,
        )


def test_thresholds_do_not_trigger_below_the_minimum_order_count():
    # given 4 orders (the minimum is 5), all shipped late
    supplier = TradeAssuredSupplierFactory()
    _late_orders(supplier, 4)

    supplier_metrics_recompute(supplier=supplier)

    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.APPROVED
    assert not SupplierStatusChange.objects.filter(field="trade_assurance").exists()


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda s: _late_orders(s, 5), "on-time shipment rate 0%"),
        (
            lambda s: [
                OrderRecordFactory(supplier=s, status=st)
                for st in ["completed"] * 3 + ["refunded"] * 2
            ],
            "order completion rate 60%",
        ),
        (
            lambda s: [OrderRecordFactory(supplier=s, disputed=i < 2) for i in range(5)],
            "dispute rate 40%",
        ),
        (
            lambda s: [
                OrderRecordFactory(supplier=s, disputed=i < 3, dispute_lost=i < 3)
                for i in range(20)
            ],
            "3 disputes lost",
        ),
        (lambda s: [OrderRecordFactory(supplier=s, rating=2) for _ in range(5)], "rating 2.00"),
    ],
)
def test_each_threshold_suspends_automatically_and_records_why(build, reason):
    # given a trade-assured supplier with enough orders that cross one threshold
    supplier = TradeAssuredSupplierFactory()
    build(supplier)

    # when the metrics are recomputed
    supplier_metrics_recompute(supplier=supplier)

    # then Trade Assurance is suspended by the system, with the reason recorded
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.SUSPENDED
    change = SupplierStatusChange.objects.get(supplier=supplier, field="trade_assurance")
    assert (change.from_value, change.to_value, change.actor) == ("approved", "suspended", None)
    assert reason in change.reason


def test_healthy_metrics_keep_trade_assurance():
    supplier = TradeAssuredSupplierFactory()
    for _ in range(10):
        OrderRecordFactory(supplier=supplier, rating=5)
    supplier_metrics_recompute(supplier=supplier)
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.APPROVED


def test_no_automatic_suspension_during_the_reinstatement_grace_period():
    supplier = TradeAssuredSupplierFactory(suspension_grace_until=clock.now() + timedelta(days=1))
    _late_orders(supplier, 6)
    supplier_metrics_recompute(supplier=supplier)
    supplier.refresh_from_db()
    assert supplier.ta_status == TradeAssuranceStatus.APPROVED


def test_the_nightly_task_recomputes_every_supplier():
    from suppliers.tasks import recompute_all_metrics

    first, second = TradeAssuredSupplierFactory(), TradeAssuredSupplierFactory()
    _late_orders(first, 5)
    OrderRecordFactory(supplier=second, amount=Decimal("2000.00"))

    assert recompute_all_metrics() == 2

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.ta_status == TradeAssuranceStatus.SUSPENDED
    assert second.ta_limit_usd == Decimal("11000.00")


def test_the_readme_worked_example():
    # given USD 60,000 completed and two open orders: USD 12,000 and EUR 10,000
    supplier = TradeAssuredSupplierFactory(legal_name="Brightway")
    for _ in range(3):
        OrderRecordFactory(supplier=supplier, amount=Decimal("20000.00"))
    supplier_metrics_recompute(supplier=supplier)
    OrderRecordFactory(supplier=supplier, status="open", amount=Decimal("12000.00"))
    OrderRecordFactory(
        supplier=supplier,
        status="open",
        amount=Decimal("10000.00"),
        currency="EUR",
        amount_usd=Decimal("10800.00"),
    )

    # then EUR 16,000 is refused with USD 17,200 left of 40,000, and EUR 15,000 fits
    with pytest.raises(Unprocessable) as refused:
        supplier_assert_can_take_order(supplier=supplier, amount=Decimal("16000"), currency="EUR")
    assert "more than the USD 17,200.00 " in refused.value.message
    assert "limit is USD 40,000.00" in refused.value.message
    assert "EUR 16,000.00, about USD" in refused.value.message
    supplier_assert_can_take_order(supplier=supplier, amount=Decimal("15000"), currency="EUR")
