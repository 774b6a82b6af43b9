"""Every cell of the role table (accounts.team.ROLE_TABLE), through the pages AND the API.

Each case is one capability on one side (buyer or supplier) exercised by one action; it runs
for every team role of that side, once logged in on the pages and once with an API key acting
with that role. Allowed: the action happens. Refused: 403 (`role_not_allowed` in the API, a
plain message or no change on the pages), and nothing changed.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User
from accounts.team import ROLE_TABLE, Capability
from disputes.models import DisputeMessage
from orders.conversation.models import OrderMessage
from orders.models import Order, OrderStatus
from payments.models import Payment
from tests.accounts.factories import colleague_of
from tests.disputes.factories import open_dispute, parties_for
from tests.orders.factories import order_in, supplier_user_of
from tradeassure.platform.api.services import api_key_create

pytestmark = pytest.mark.django_db
S = OrderStatus
_keys = itertools.count()

BUYER_ROLES = ["admin", "purchasing", "finance"]
SUPPLIER_ROLES = ["admin", "sales", "finance"]


@dataclass
class World:
    admin: User  # the side's existing member (its admin)
    target: Any  # order or dispute
    changed: Callable[[], bool]  # whether the action happened


def _order(status: str, side: str) -> World:
    order = order_in(status)
    admin = order.buyer if side == "buyer" else supplier_user_of(order)
    return World(admin, order, lambda: Order.objects.get(pk=order.pk).status != status)


def _messages(side: str) -> World:
    order = order_in(S.PENDING_CONFIRMATION)
    admin = order.buyer if side == "buyer" else supplier_user_of(order)
    return World(admin, order, lambda: OrderMessage.objects.filter(order=order).exists())


def _dispute(side: str) -> World:
    parties = parties_for("delivered")
    dispute = open_dispute(parties)
    admin = parties.buyer if side == "buyer" else parties.supplier_user
    before = DisputeMessage.objects.filter(dispute=dispute).count()
    return World(
        admin,
        dispute,
        lambda: DisputeMessage.objects.filter(dispute=dispute).count() > before,
    )


def _payable(side: str) -> World:
    order = order_in(S.AWAITING_PAYMENT)
    return World(
        order.buyer,
        order,
        lambda: Payment.objects.filter(escrow__reference=order.escrow_reference).exists(),
    )


def _viewing(side: str, status: str = S.IN_PRODUCTION) -> World:
    order = order_in(status)
    admin = order.buyer if side == "buyer" else supplier_user_of(order)
    return World(admin, order, lambda: False)


# (capability, side, build, page call, api call); a call returns True when allowed.
def page_confirm(client, w):
    client.post(f"/orders/{w.target.pk}/confirm/", {"note": ""})
    return w.changed()


def api_confirm(client, w):
    return client.post(
        f"/api/v1/orders/{w.target.pk}/confirm/",
        {},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"k{next(_keys)}",
    )


def page_cancel(client, w):
    client.post(f"/orders/{w.target.pk}/cancel/", {"reason": "changed plans"})
    return w.changed()


def api_cancel(client, w):
    return client.post(
        f"/api/v1/orders/{w.target.pk}/cancel/",
        {"reason": "x"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"k{next(_keys)}",
    )


def page_talk(client, w):
    client.post(f"/orders/{w.target.pk}/messages/", {"body": "Hello"})
    return w.changed()


def api_talk(client, w):
    return client.post(
        f"/api/v1/orders/{w.target.pk}/messages/",
        {"body": "Hello"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"k{next(_keys)}",
    )


def page_dispute(client, w):
    client.post(f"/disputes/{w.target.pk}/message/", {"body": "Our view"})
    return w.changed()


def api_dispute(client, w):
    return client.post(
        f"/api/v1/disputes/{w.target.pk}/messages/",
        {"body": "Our view"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"k{next(_keys)}",
    )


def page_pay(client, w):
    client.post(f"/orders/{w.target.pk}/pay/", {"method": "card"})
    return w.changed()


def api_pay(client, w):
    return client.post(
        f"/api/v1/orders/{w.target.pk}/pay/",
        {"method": "card"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"k{next(_keys)}",
    )


def page_payout(client, w):
    # the Money page's payout form: a refused role gets 403; an allowed one gets the page's
    # own answer (no balance yet: a message), never a refusal
    return (
        client.post(
            "/payments/money/payout/",
            {"currency": "USD", "amount": "1.00", "idempotency_key": f"p{next(_keys)}"},
        ).status_code
        != 403
    )


def page_money_buyer(client, w):
    return "Held in escrow" in client.get(f"/orders/{w.target.pk}/").content.decode()


def page_money_supplier(client, w):
    return client.get("/payments/money/").status_code == 200


def api_money(client, w):
    return client.get("/api/v1/payments/")


def page_members(client, w):
    return client.get("/team/").status_code == 200


def page_integrations(client, w):
    return client.get("/developers/").status_code == 200


def api_integrations(client, w):
    return client.get("/api/v1/webhook-endpoints/")


CASES = [
    (
        Capability.TRADE,
        "supplier",
        lambda: _order(S.PENDING_CONFIRMATION, "supplier"),
        page_confirm,
        api_confirm,
    ),
    (
        Capability.TRADE,
        "buyer",
        lambda: _order(S.PENDING_CONFIRMATION, "buyer"),
        page_cancel,
        api_cancel,
    ),
    (Capability.TALK, "buyer", lambda: _messages("buyer"), page_talk, api_talk),
    (Capability.TALK, "supplier", lambda: _messages("supplier"), page_talk, api_talk),
    (Capability.DISPUTE, "buyer", lambda: _dispute("buyer"), page_dispute, api_dispute),
    (Capability.DISPUTE, "supplier", lambda: _dispute("supplier"), page_dispute, api_dispute),
    (Capability.PAY, "buyer", lambda: _payable("buyer"), page_pay, api_pay),
    (Capability.PAY, "supplier", lambda: _viewing("supplier"), page_payout, None),
    (Capability.SEE_MONEY, "buyer", lambda: _viewing("buyer"), page_money_buyer, api_money),
    (
        Capability.SEE_MONEY,
        "supplier",
        lambda: _viewing("supplier"),
        page_money_supplier,
        api_money,
    ),
    (Capability.MANAGE_MEMBERS, "buyer", lambda: _viewing("buyer"), page_members, None),
    (Capability.MANAGE_MEMBERS, "supplier", lambda: _viewing("supplier"), page_members, None),
    (
        Capability.MANAGE_INTEGRATIONS,
        "buyer",
        lambda: _viewing("buyer"),
        page_integrations,
        api_integrations,
    ),
    (
        Capability.MANAGE_INTEGRATIONS,
        "supplier",
        lambda: _viewing("supplier"),
        page_integrations,
        api_integrations,
    ),
]

PARAMS = [
    pytest.param(capability, side, role, build, page, api, id=f"{capability}-{side}-{role}")
    for capability, side, build, page, api in CASES
    for role in (BUYER_ROLES if side == "buyer" else SUPPLIER_ROLES)
]


# No API endpoint covers these: members are managed on the Team page only, payouts asked on
# the Money page; the page cells cover them.
API_PARAMS = [param for param in PARAMS if param.values[5] is not None]


def test_every_capability_has_a_case_on_both_sides():
    covered = {(capability, side) for capability, side, *_ in CASES}
    assert covered == {(c, side) for c in ROLE_TABLE for side in ("buyer", "supplier")}


def _member(admin: User, role: str) -> User:
    return admin if role == "admin" else colleague_of(admin, role)


@pytest.mark.parametrize(("capability", "side", "role", "build", "page", "api"), PARAMS)
def test_role_table_cell_on_the_pages(client, capability, side, role, build, page, api):
    # given a member of the side with this role
    world = build()
    client.force_login(_member(world.admin, role))
    allowed = role in ROLE_TABLE[capability][1]
    # when they do what the capability covers on the pages
    done = page(client, world)
    # then it happened exactly when the table allows it
    assert done is allowed


@pytest.mark.parametrize(("capability", "side", "role", "build", "page", "api"), API_PARAMS)
def test_role_table_cell_through_an_api_key(capability, side, role, build, page, api):
    # given an API key of the side acting with this role (created by its admin)
    world = build()
    _, raw_key = api_key_create(actor=world.admin, name=f"key {role}", team_role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    allowed = role in ROLE_TABLE[capability][1]
    # when the integration calls the endpoint
    response = api(client, world)
    # then allowed: it succeeds; refused: 403 role_not_allowed and nothing changed
    if allowed:
        assert response.status_code in (200, 201), response.content[:300]
    else:
        assert response.status_code == 403, response.content[:300]
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "role_not_allowed"
        assert not world.changed()


@pytest.mark.parametrize(
    ("role", "sees"), [("admin", True), ("purchasing", False), ("finance", True)]
)
def test_the_order_api_shows_the_escrow_only_to_roles_that_see_money(role, sees):
    # given an order in production and a buyer key acting with this role
    world = _viewing("buyer")
    _, raw_key = api_key_create(actor=world.admin, name="k", team_role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    # when the integration reads the order
    body = client.get(f"/api/v1/orders/{world.target.pk}/").json()
    # then the escrow's figures are there exactly for finance and admins
    assert (body["money"] is not None) is sees
    assert body["total"]  # the contract's price is not money movement: every role reads it


def test_seed_demo_gives_every_demo_company_three_members():
    import io

    from django.core.management import call_command

    from accounts.models import Organisation

    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    companies = Organisation.objects.filter(
        kind__in=["buyer", "supplier"], members__email__endswith="@demo.tradeassure.dev"
    ).distinct()
    assert companies.count() >= 4
    for company in companies:
        roles = sorted(
            company.members.filter(is_api_service=False).values_list("team_role", flat=True)
        )
        expected = ["admin", "finance", "purchasing" if company.kind == "buyer" else "sales"]
        assert roles == sorted(expected), company.name
    assert "buyer-finance@demo.tradeassure.dev" in out.getvalue()
    assert "supplier-sales@demo.tradeassure.dev" in out.getvalue()


@pytest.mark.parametrize(
    ("role", "offered"), [("admin", True), ("purchasing", True), ("finance", False)]
)
def test_the_supplier_page_offers_an_order_only_to_roles_that_trade(client, role, offered):
    from tests.factories import BuyerFactory
    from tests.orders.factories import trade_assured_supplier

    supplier = trade_assured_supplier()
    admin = BuyerFactory()
    client.force_login(_member(admin, role))
    html = client.get(reverse("suppliers:profile", args=[supplier.pk])).content.decode()
    assert ("Start a protected order" in html) is offered


def test_a_refused_member_reads_a_plain_message_and_sees_no_button(client):
    # given a supplier finance member on an order waiting for confirmation
    world = _order(S.PENDING_CONFIRMATION, "supplier")
    client.force_login(_member(world.admin, "finance"))
    # when they open the order page
    page = client.get(f"/orders/{world.target.pk}/").content.decode()
    # then there is no Confirm button (the order itself is readable), which its admin has
    button = f'action="/orders/{world.target.pk}/confirm/"'
    assert world.target.reference in page
    assert button not in page
    client.force_login(world.admin)
    assert button in client.get(f"/orders/{world.target.pk}/").content.decode()
    client.force_login(_member(world.admin, "finance"))
    # and when they post the action anyway, a plain message says who may, and nothing changed
    response = client.post(f"/orders/{world.target.pk}/confirm/", {"note": ""}, follow=True)
    assert "Only purchasing, sales or an admin of your organisation" in response.content.decode()
    assert not world.changed()
