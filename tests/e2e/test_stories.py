"""The product's stories, in Chromium, end to end against the running system (live server on
PostgreSQL, Celery worker and beat as subprocesses), at a desktop and a phone width. Every page
a person opens passes the checks of `Actor.check` (no sideways scroll, no console error, no
request to another host, no serious/critical axe-core violation); key pages are screenshotted
under $TRADEASSURE_VAR_DIR/screenshots/<story>-<width>/.

Time passes the way it does in production: the clock of every process moves
(`stage.travel`) and the sweeps act on it; no row is edited to fake a deadline."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.models import Organisation, User
from disputes.models import Dispute, DisputeStatus, Inspection
from orders.models import Order, OrderStatus
from payments.selectors import escrow_summary, supplier_balances
from tests.e2e.conftest import wait_until
from tests.factories import PASSWORD, InspectorFactory, MediatorFactory, OrganisationFactory
from tests.suppliers.factories import (
    ProductFactory,
    TradeAssuredSupplierFactory,
    supplier_staff_for,
)
from tradeassure.core.money import release_fee

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]
WIDTH = pytest.mark.parametrize("width", ["desktop", "phone"])
S = OrderStatus
NEWCOMER_PASSWORD = "a-long-unusual-passphrase-91"
QUALITY = "Output 5 V ± 0.1 V under 2 A load; no scratches on the housing; CE marked"

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def files(tmp_path: Path, *names: str) -> list[str]:
    paths = []
    for name in names:
        path = tmp_path / name
        path.write_bytes(PNG if name.endswith(".png") else PDF)
        paths.append(str(path))
    return paths


def money_text(amount: Decimal) -> str:
    return f"USD {amount:,.2f}"


# --- the cast ---------------------------------------------------------------------------------


def a_trade_assured_supplier():
    """A gold, verified, Trade Assurance supplier with a product and one staff member."""
    supplier = TradeAssuredSupplierFactory(legal_name="Shenzhen Bright Power Co", country="CN")
    product = ProductFactory(
        supplier=supplier,
        name="USB-C charger 65 W",
        unit_price=Decimal("12.50"),
        minimum_order_quantity=200,
        specifications="65 W GaN, USB-C PD 3.0",
        lead_time_days=30,
    )
    staff = supplier_staff_for(supplier, full_name="Li Wei", email="li.wei@brightpower.example")
    return supplier, product, staff


def log_in(actor, email: str, password: str = PASSWORD) -> None:
    actor.goto("/accounts/login/")
    actor.page.get_by_label("Email").fill(email)
    actor.page.get_by_label("Password").fill(password)
    actor.page.locator("main form").get_by_role("button", name="Log in").click()
    expect(actor.page).not_to_have_url(re.compile(r"/accounts/login/"))
    actor.check()


def log_in_to_the_admin(actor, user: User) -> None:
    """Staff pass the admin's second factor the real way: a TOTP code from their device."""
    from accounts.otp import totp_current_token, totp_device_enrol

    device = totp_device_enrol(user=user, name="phone")
    actor.goto("/admin/login/?next=/admin/")
    actor.page.locator("input[name=username]").fill(user.email)
    actor.page.locator("input[name=password]").fill(PASSWORD)
    if actor.page.locator("select[name=otp_device]").count():
        actor.page.locator("select[name=otp_device]").select_option(device.persistent_id)
    actor.page.locator("input[name=otp_token]").fill(totp_current_token(device))
    actor.page.locator("input[type=submit]").click()
    expect(actor.page).not_to_have_url(re.compile(r"/admin/login/"))
    actor.check()


def order_page(actor, order: Order, name: str | None = None) -> None:
    actor.goto(f"/orders/{order.pk}/", name)


def pay_by_card(actor) -> None:
    """On a payment page: pay with the sandbox's good card; the worker applies the webhook."""
    page = actor.page
    page.get_by_label(re.compile("Card number", re.I)).fill("4242 4242 4242 4242")
    page.get_by_label(re.compile("Expiry", re.I)).fill("12/30")
    page.get_by_label(re.compile("CVC", re.I)).fill("123")
    page.locator("main form").get_by_role("button", name=re.compile("^Pay ")).click()
    actor.check()


def refreshed(model, pk):
    return model.objects.get(pk=pk)


# --- stories 1 to 3: a newcomer's order, paid, shipped, disputed and partly refunded ---------


@WIDTH
def test_order_pay_ship_dispute_and_partial_refund(stage, cast, tmp_path, width):
    supplier, _product, supplier_user = a_trade_assured_supplier()
    mediator = MediatorFactory(email="maria@tradeassure.example", full_name="Maria Mediator")
    inspection_company = OrganisationFactory(
        name="QualiCheck Inspections",
        kind=Organisation.Kind.INSPECTION,
        country="HK",
        inspection_approved=True,
    )
    inspector_user = InspectorFactory(
        organisation=inspection_company, email="ines@qualicheck.example"
    )
    buyer = cast("buyer")
    page = buyer.page

    # --- story 1: a newcomer signs up as a buyer, finds a Trade Assurance supplier, orders ---
    # given the home page
    buyer.goto("/", "home")
    # when they sign up as a buyer (their browser's zone is Europe/Paris)
    buyer.goto("/accounts/signup/", "sign-up")
    page.get_by_label("a buyer, placing protected orders").check()
    page.get_by_label("Company name").fill("Harbour Goods Ltd")
    page.get_by_label("Country (ISO code, e.g. US, CN)").fill("GB")
    page.get_by_label("Your name").fill("Hana Harbour")
    page.get_by_label("Email").fill("hana@harbour.example")
    page.get_by_label("Password").fill(NEWCOMER_PASSWORD)
    page.locator("main form").get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Welcome to TradeAssure, Hana Harbour.")).to_be_visible()
    buyer.check("welcome")
    newcomer = User.objects.get(email="hana@harbour.example")
    assert newcomer.role == User.Role.BUYER and newcomer.time_zone == "Europe/Paris"

    # when they look for Trade Assurance suppliers in the directory
    buyer.goto("/suppliers/", "directory")
    page.locator("[name=trade_assurance]").select_option("yes")
    page.locator("main form[role=search]").get_by_role("button", name="Filter").click()
    buyer.check("directory-trade-assurance")
    expect(page.locator("main table")).to_contain_text("Trade Assurance")
    page.get_by_role("link", name="Shenzhen Bright Power Co").click()
    buyer.check("supplier-profile")
    page.get_by_role("link", name="USB-C charger 65 W").first.click()
    buyer.check("product")
    page.locator("main a", has_text="Start a protected order").click()
    buyer.check("order-form")

    # and order 200 chargers with quality requirements and post-delivery coverage
    page.locator("[name=items-0-quality_requirements]").fill(QUALITY)
    page.locator("[name=coverage][value=post_delivery]").check()
    page.locator("[name=destination]").fill("Felixstowe, GB")
    page.locator("[name=initial_payment_amount]").fill("750.00")
    page.get_by_role("button", name="Review the order").click()
    buyer.check("order-review")
    page.locator("main form").get_by_role("button", name=re.compile("Place|Submit")).first.click()
    expect(page.get_by_text(re.compile(r"Order TA-\d+ placed"))).to_be_visible()
    buyer.check("order-placed")

    # then the order waits for the supplier, with its total and the stepper at "Confirmed"
    order = Order.objects.get(buyer=newcomer)
    assert order.status == S.PENDING_CONFIRMATION and order.total == Decimal("2500.00")
    assert order.coverage == "post_delivery"
    assert order.current_version.items.get().quality_requirements == QUALITY
    expect(page.locator(".stepper [aria-current=step]")).to_contain_text("Confirmed")
    expect(page.locator(".money-summary")).to_contain_text("USD 2,500.00")

    # --- story 2: confirmed, initial payment by card, balance by transfer, shipped -----------
    seller = cast("supplier")
    log_in(seller, supplier_user.email)
    seller.goto("/orders/incoming/", "work-queue")
    expect(seller.page.locator("#work-queue")).to_contain_text(order.reference)
    order_page(seller, order, "to-confirm")
    seller.page.get_by_role("button", name="Confirm order").click()
    seller.check()
    assert refreshed(Order, order.pk).status == S.AWAITING_PAYMENT

    # the buyer pays the initial payment by card
    order_page(buyer, order, "pay-initial")
    expect(page.locator(".next-step h2")).to_contain_text("pay the initial payment")
    page.locator("[name=method]").select_option("card")
    page.get_by_role("button", name=re.compile(r"Pay initial payment")).click()
    buyer.check("card-payment")
    pay_by_card(buyer)
    wait_until(
        lambda: refreshed(Order, order.pk).status == S.IN_PRODUCTION, "the card payment to apply"
    )

    # the supplier requests the balance
    order_page(seller, order)
    seller.page.get_by_role("button", name=re.compile("Request", re.I)).first.click()
    seller.check()
    assert refreshed(Order, order.pk).status == S.AWAITING_BALANCE

    # the buyer pays it by bank transfer (the sandbox makes it arrive)
    order_page(buyer, order, "pay-balance")
    page.locator("[name=method]").select_option("bank_transfer")
    page.get_by_role("button", name=re.compile(r"Pay balance")).click()
    buyer.check("transfer-instructions")
    page.get_by_text("Sandbox: make the transfer arrive").click()
    page.get_by_role("button", name="Simulate the transfer arriving").click()
    buyer.check()
    wait_until(
        lambda: refreshed(Order, order.pk).status == S.READY_TO_SHIP, "the transfer to apply"
    )

    # the supplier ships with the documents
    order_page(seller, order)
    seller.page.locator("main a", has_text="Record shipment").click()
    seller.check("ship-form")
    seller.page.get_by_label("Carrier").fill("Maersk")
    seller.page.get_by_label("Tracking number").fill("MAEU1234567")
    seller.page.get_by_label("Ship date").fill(str(order.placed_at.date()))
    invoice, lading, packing = files(tmp_path, "invoice.pdf", "lading.pdf", "packing.pdf")
    seller.page.get_by_label("Commercial invoice").set_input_files(invoice)
    seller.page.get_by_label("Bill of lading").set_input_files(lading)
    seller.page.get_by_label("Packing list").set_input_files(packing)
    seller.page.get_by_role("button", name="Record shipment").click()
    seller.check("shipped")
    assert refreshed(Order, order.pk).status == S.SHIPPED
    held = escrow_summary(escrow_reference=order.escrow_reference).held
    assert held == Decimal("2500.00")

    # --- story 3: receipt, quality dispute, counter-offer, escalation, inspection, decision --
    order_page(buyer, order, "shipped")
    page.get_by_role("button", name=re.compile("Confirm receipt")).click()
    buyer.check()
    assert refreshed(Order, order.pk).status == S.DELIVERED
    # one click on "accept the goods" only shows what it would release; the buyer goes back
    order_page(buyer, order, "delivered")
    page.locator("main a", has_text="Accept the goods and release payment").click()
    buyer.check("accept-goods-confirm")
    expect(page.locator("h1")).to_contain_text(f"release {money_text(held)}")
    page.get_by_role("link", name=re.compile("Back to the order, release nothing")).click()
    buyer.check()
    assert refreshed(Order, order.pk).status == S.DELIVERED
    assert escrow_summary(escrow_reference=order.escrow_reference).released == 0
    # and opens a dispute instead
    page.locator("main a[href*='/disputes/open/']").first.click()
    buyer.check("dispute-form")
    page.locator("[name=type]").select_option("quality")
    page.locator("[name=description]").fill("30 of 200 chargers give 4.2 V under load.")
    page.locator("[name=remedy]").select_option("partial_refund")
    page.locator("[name=refund_amount]").fill("600.00")
    page.locator("[name=files]").set_input_files(files(tmp_path, "photo.png"))
    page.get_by_role("button", name="Open the dispute").click()
    buyer.check("dispute-opened")
    dispute = Dispute.objects.get(order=order)
    assert dispute.status == DisputeStatus.AWAITING_SUPPLIER

    # the supplier counter-proposes 300
    seller.goto(dispute.get_absolute_url(), "dispute-to-answer")
    seller.page.get_by_text("Counter-propose").click()
    seller.page.locator(
        "#accept ~ details form [name=remedy], form[action$='/propose/'] [name=remedy]"
    ).first.select_option("partial_refund")
    seller.page.locator("form[action$='/propose/'] [name=refund_amount]").fill("300.00")
    seller.page.locator("form[action$='/propose/'] [name=message]").fill("Only 15 units fail.")
    seller.page.get_by_role("button", name="Send the proposal").click()
    seller.check()
    assert refreshed(Dispute, dispute.pk).status == DisputeStatus.NEGOTIATING

    # three days pass (the buyer may escalate from day 4); the buyer escalates
    stage.travel(days=3, hours=1)
    buyer.goto(dispute.get_absolute_url(), "dispute-counter-offer")
    page.locator("form[action$='/escalate/'] [name=note]").fill("300 does not cover the loss.")
    page.get_by_role("button", name="Escalate to a mediator").click()
    buyer.check()
    assert refreshed(Dispute, dispute.pk).status == DisputeStatus.ESCALATED

    # the mediator (with their second factor) takes the case and orders an inspection
    desk = cast("mediator")
    log_in_to_the_admin(desk, mediator)
    desk.goto(f"/admin/disputes/dispute/{dispute.pk}/change/", "admin-case")
    desk.page.get_by_role("button", name=re.compile("Assign to me|Take over")).click()
    desk.check()
    desk.page.get_by_role("link", name="Order an inspection").click()
    desk.check("admin-order-inspection")
    desk.page.locator("[name=organisation]").select_option(str(inspection_company.pk))
    desk.page.locator("[name=instructions]").fill("Test 20 random units at 2 A load.")
    fee = Decimal(desk.page.locator("[name=fee_amount]").input_value())
    desk.page.get_by_role("button", name="Order the inspection").click()
    desk.check()
    inspection = Inspection.objects.get(dispute=dispute)

    # the buyer pays the inspection fee by card
    buyer.goto(dispute.get_absolute_url(), "dispute-inspection-fee")
    page.locator("#inspection-fee [name=method]").select_option("card")
    page.get_by_role("button", name="Pay the inspection fee").click()
    buyer.check()
    pay_by_card(buyer)
    wait_until(
        lambda: refreshed(Inspection, inspection.pk).fee_paid_at is not None,
        "the inspection fee to apply",
    )

    # the inspector reports
    inspector = cast("inspector")
    log_in(inspector, inspector_user.email)
    inspector.goto(f"/disputes/inspections/{inspection.pk}/", "inspection")
    inspector.page.locator("[name=verdict][value=does_not_conform]").check()
    inspector.page.locator("[name=findings]").fill("4 of 20 units under 4.5 V at 2 A.")
    inspector.page.locator("[name=files]").set_input_files(files(tmp_path, "report.pdf"))
    inspector.page.get_by_role("button", name="Submit the report").click()
    inspector.check()

    # the mediator decides a partial refund of 500 (preview, then confirm)
    desk.goto(f"/admin/disputes/dispute/{dispute.pk}/decide/", "admin-decide")
    desk.page.locator("[name=remedy]").select_option("partial_refund")
    desk.page.locator("[name=refund_amount]").fill("500.00")
    desk.page.locator("[name=supplier_at_fault]").select_option("yes")
    desk.page.locator("[name=reason]").fill("The inspection found 20% of units under spec.")
    desk.page.get_by_role("button", name="Preview the decision").click()
    desk.check("admin-decision-preview")
    desk.page.get_by_role("button", name="Confirm and execute").click()
    desk.check()
    wait_until(
        lambda: refreshed(Dispute, dispute.pk).status == DisputeStatus.RESOLVED, "the decision"
    )

    # then the buyer sees the refund on the order and the dispute
    order_page(buyer, order, "refunded-part")
    expect(page.locator(".money-summary")).to_contain_text(money_text(Decimal("500.00")))
    buyer.goto(dispute.get_absolute_url(), "dispute-resolved")
    expect(page.get_by_text(re.compile(r"^Resolved .* by the mediator.s decision"))).to_be_visible()
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert money.refunded == Decimal("500.00") and money.held == 0

    # and the supplier's Money page reconciles to the cent with the ledger: released 2,000.00,
    # less the release fee and the inspection fee charged to the supplier at fault
    released = Decimal("2000.00")
    expected = released - release_fee(released, "USD") - fee
    seller.goto("/payments/money/", "money")
    (balance,) = supplier_balances(organisation=supplier.organisation)
    assert balance.available == expected, (balance, expected, fee)
    expect(seller.page.locator("main")).to_contain_text(f"Available: {money_text(expected)}")


# --- story 4: a late shipment, cancelled with a full refund ----------------------------------


@WIDTH
def test_late_shipment_cancelled_with_a_full_refund(stage, cast, width):
    from tests.factories import BuyerFactory

    _supplier, product, supplier_user = a_trade_assured_supplier()
    buyer_user = BuyerFactory(email="olu@lagos-traders.example", time_zone="Africa/Lagos")
    buyer = cast("buyer")
    seller = cast("supplier")
    page = buyer.page

    # given an order placed, confirmed and paid in part (initial payment by card)
    log_in(buyer, buyer_user.email)
    buyer.goto(f"/orders/new/?product={product.pk}")
    page.locator("[name=items-0-quality_requirements]").fill(QUALITY)
    page.locator("[name=destination]").fill("Lagos, NG")
    page.locator("[name=initial_payment_amount]").fill("1000.00")
    page.get_by_role("button", name="Review the order").click()
    buyer.check()
    page.locator("main form").get_by_role("button", name=re.compile("Place|Submit")).first.click()
    buyer.check()
    order = Order.objects.get(buyer=buyer_user)
    log_in(seller, supplier_user.email)
    order_page(seller, order)
    seller.page.get_by_role("button", name="Confirm order").click()
    seller.check()
    order_page(buyer, order)
    page.locator("[name=method]").select_option("card")
    page.get_by_role("button", name=re.compile(r"Pay initial payment")).click()
    buyer.check()
    pay_by_card(buyer)
    wait_until(
        lambda: refreshed(Order, order.pk).status == S.IN_PRODUCTION, "the card payment to apply"
    )
    order = refreshed(Order, order.pk)
    paid = escrow_summary(escrow_reference=order.escrow_reference).held
    assert paid == Decimal("1000.00")

    # when the shipment deadline passes with nothing shipped (the clock moves, beat's sweep runs)
    days = (order.shipment_deadline - order.placed_at).days + 1
    stage.travel(days=days)
    stage.sweep("orders.sweep_shipment_deadlines")
    wait_until(lambda: refreshed(Order, order.pk).is_late, "the shipment sweep to flag the order")

    # then the buyer is told and may cancel with a full refund
    order_page(buyer, order, "late")
    expect(page.get_by_text(re.compile("The shipment deadline .* has passed"))).to_be_visible()
    page.locator("form[action$='/cancel_late_with_refund/'] summary").click()
    page.locator("form[action$='/cancel_late_with_refund/'] [name=note]").fill("Too late.")
    page.locator("form[action$='/cancel_late_with_refund/']").get_by_role("button").click()
    buyer.check("cancelled")
    wait_until(
        lambda: escrow_summary(escrow_reference=order.escrow_reference).refunded == paid,
        "the full refund",
    )
    assert refreshed(Order, order.pk).status in (S.CANCELLED, S.REFUNDED)
    order_page(buyer, order, "refunded")
    expect(page.locator(".money-summary")).to_contain_text(money_text(paid))
    expect(page.locator(".stepper .stopped")).to_be_visible()
    order_page(seller, order, "supplier-sees-cancelled")
