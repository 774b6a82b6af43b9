"""The Team page and its services: invitations, role changes, removals, the last admin."""

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import ApiKey, Invitation, TeamEvent, User
from tests.accounts.factories import colleague_of
from tests.factories import PASSWORD as FACTORY_PASSWORD
from tests.factories import BuyerFactory, PartnerFactory, SupplierStaffFactory
from tradeassure.core import clock
from tradeassure.core.errors import Conflict, DomainError, NotAllowed, NotFound, ValidationFailed
from tradeassure.platform import members
from tradeassure.platform.api.services import api_key_create
from tradeassure.platform.models import OutboxMessage

pytestmark = pytest.mark.django_db
PASSWORD = "a long enough passphrase 42"


def _token_from_email() -> str:
    body = OutboxMessage.objects.filter(channel="email").latest("id").payload["body"]
    match = re.search(r"/team/join/([^/\s]+)/", body)
    assert match is not None, body
    return match.group(1)


# --- invitations ----------------------------------------------------------------------------


def test_an_admin_invites_a_colleague_who_joins_with_the_role(client):
    # given a buyer company's admin on the Team page
    admin = BuyerFactory()
    client.force_login(admin)
    # when they invite a colleague as finance
    response = client.post("/team/invite/", {"email": "Fin@Example.com", "team_role": "finance"})
    # then an invitation is stored (only the token's digest), emailed and recorded
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.team_role) == ("fin@example.com", "finance")
    token = _token_from_email()
    assert token not in invitation.hashed_token
    assert TeamEvent.objects.get().kind == TeamEvent.Kind.INVITED
    # when the colleague opens the link logged out and sets name and password
    client.logout()
    assert client.get(f"/team/join/{token}/").status_code == 200
    response = client.post(f"/team/join/{token}/", {"full_name": "Fay", "password": PASSWORD})
    # then they are a finance member of the buyer company, logged in
    assert response.status_code == 302
    joined = User.objects.get(email="fin@example.com")
    assert (joined.role, joined.team_role, joined.organisation_id) == (
        User.Role.BUYER,
        "finance",
        admin.organisation_id,
    )
    assert joined.check_password(PASSWORD)
    assert client.get("/orders/").status_code == 200
    assert TeamEvent.objects.filter(kind=TeamEvent.Kind.JOINED, member=joined).exists()


def test_an_invitation_works_once(client):
    # given an invitation accepted already
    admin = SupplierStaffFactory()
    members.member_invite(actor=admin, email="sam@example.com", team_role="sales")
    token = _token_from_email()
    members.invitation_accept(token=token, full_name="Sam", password=PASSWORD)
    users = User.objects.count()
    # when the link is used again (service and page)
    with pytest.raises(Conflict) as refused:
        members.invitation_accept(token=token, full_name="Sam again", password=PASSWORD)
    page = client.post(f"/team/join/{token}/", {"full_name": "Sam", "password": PASSWORD})
    # then it is refused with a clear message and nobody new exists
    assert refused.value.code == "invitation_invalid"
    assert page.status_code == 409 and b"already been used" in page.content
    assert User.objects.count() == users


def test_an_expired_invitation_is_refused(client, monkeypatch, settings):
    # given an invitation valid 7 days
    settings.TEAMS = {**settings.TEAMS, "INVITATION_VALID_FOR": timedelta(days=7)}
    admin = BuyerFactory()
    members.member_invite(actor=admin, email="late@example.com", team_role="purchasing")
    token = _token_from_email()
    # when 7 days and a minute have passed
    later = clock.now() + timedelta(days=7, minutes=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    # then the link is refused and no user is created
    with pytest.raises(Conflict) as refused:
        members.invitation_accept(token=token, full_name="Late", password=PASSWORD)
    assert refused.value.code == "invitation_expired"
    page = client.get(f"/team/join/{token}/")
    assert page.status_code == 409 and b"expired" in page.content
    assert not User.objects.filter(email="late@example.com").exists()


def test_a_newer_invitation_replaces_the_earlier_link():
    admin = BuyerFactory()
    members.member_invite(actor=admin, email="twice@example.com", team_role="purchasing")
    first = _token_from_email()
    members.member_invite(actor=admin, email="twice@example.com", team_role="finance")
    with pytest.raises(NotFound):
        members.invitation_accept(token=first, full_name="T", password=PASSWORD)
    user = members.invitation_accept(token=_token_from_email(), full_name="T", password=PASSWORD)
    assert user.team_role == "finance"


@pytest.mark.parametrize(
    ("factory", "team_role"),
    [(BuyerFactory, "sales"), (SupplierStaffFactory, "purchasing"), (PartnerFactory, "finance")],
)
def test_a_role_of_another_organisation_kind_is_refused(factory, team_role):
    # given an admin of one kind of organisation
    admin = factory()
    # when they invite with a role their kind does not have
    with pytest.raises(ValidationFailed) as refused:
        members.member_invite(actor=admin, email="x@example.com", team_role=team_role)
    # then nothing is stored or sent
    assert refused.value.code == "team_role_wrong_kind"
    assert not Invitation.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_the_database_refuses_purchasing_in_a_supplier_and_sales_in_a_buyer():
    from django.db import IntegrityError, transaction

    supplier_member = SupplierStaffFactory()
    buyer_member = BuyerFactory()
    for user, role in ((supplier_member, "purchasing"), (buyer_member, "sales")):
        with pytest.raises(IntegrityError), transaction.atomic():
            User.objects.filter(pk=user.pk).update(team_role=role)


def test_an_address_with_an_account_cannot_be_invited_and_nothing_is_sent(client):
    admin = BuyerFactory()
    existing = BuyerFactory()
    client.force_login(admin)
    response = client.post("/team/invite/", {"email": existing.email, "team_role": "finance"})
    assert response.status_code == 409
    assert b"invitations are for new users only" in response.content
    assert not Invitation.objects.exists() and not OutboxMessage.objects.exists()


def test_a_logged_in_visitor_is_asked_to_log_out(client):
    admin = BuyerFactory()
    members.member_invite(actor=admin, email="new@example.com", team_role="finance")
    client.force_login(BuyerFactory())
    page = client.post(
        f"/team/join/{_token_from_email()}/", {"full_name": "N", "password": PASSWORD}
    )
    assert page.status_code == 409
    assert not User.objects.filter(email="new@example.com").exists()


def test_invitations_are_rate_limited_per_organisation(settings):
    settings.TEAMS = {**settings.TEAMS, "INVITATIONS_PER_DAY": 2}
    admin = BuyerFactory()
    for n in range(2):
        members.member_invite(actor=admin, email=f"c{n}@example.com", team_role="finance")
    with pytest.raises(Conflict) as refused:
        members.member_invite(actor=admin, email="c3@example.com", team_role="finance")
    assert refused.value.code == "invitations_rate_limited"
    assert Invitation.objects.count() == 2


def test_an_unknown_link_is_a_clear_404(client):
    page = client.get("/team/join/not-a-token/")
    assert page.status_code == 404 and b"not valid" in page.content


# --- members ----------------------------------------------------------------------------------


def test_only_admins_manage_members(client):
    # given a purchasing member
    admin = BuyerFactory()
    purchasing = colleague_of(admin, "purchasing")
    client.force_login(purchasing)
    # when they open the Team page or try to change a role
    page = client.get("/team/")
    with pytest.raises(NotAllowed) as refused:
        members.member_change_role(actor=purchasing, member_id=admin.pk, team_role="finance")
    # then they are refused plainly and nothing changed
    assert page.status_code == 403 and b"Only an admin" in page.content
    assert refused.value.code == "role_not_allowed"
    admin.refresh_from_db()
    assert admin.team_role == "admin"


def test_an_admin_changes_a_role_and_removes_a_member_recorded(client):
    admin = SupplierStaffFactory()
    sales = colleague_of(admin, "sales")
    client.force_login(admin)
    client.post(f"/team/members/{sales.pk}/role/", {"team_role": "finance"})
    client.post(f"/team/members/{sales.pk}/remove/")
    sales.refresh_from_db()
    assert (sales.team_role, sales.is_active) == ("finance", False)
    assert list(
        TeamEvent.objects.filter(member=sales).order_by("id").values_list("kind", "actor")
    ) == [("role_changed", admin.pk), ("removed", admin.pk)]
    # a removed member can no longer log in
    client.logout()
    assert not client.login(username=sales.email, password=FACTORY_PASSWORD)


def test_members_of_another_organisation_are_not_found():
    admin, outsider = BuyerFactory(), BuyerFactory()
    with pytest.raises(NotFound):
        members.member_remove(actor=admin, member_id=outsider.pk)
    with pytest.raises(NotFound):
        members.member_change_role(actor=admin, member_id=outsider.pk, team_role="finance")
    outsider.refresh_from_db()
    assert outsider.is_active and outsider.team_role == "admin"


def test_outsiders_get_404_on_another_organisations_order_whatever_their_role(client):
    from tests.orders.factories import order_in

    order = order_in("pending_confirmation")
    for role in ("admin", "purchasing", "finance"):
        client.force_login(
            colleague_of(BuyerFactory(), role) if role != "admin" else BuyerFactory()
        )
        assert client.get(f"/orders/{order.pk}/").status_code == 404


def test_the_last_admin_can_be_neither_removed_nor_demoted():
    # given a company whose only admin has a finance colleague
    admin = BuyerFactory()
    colleague_of(admin, "finance")
    # when the admin removes or demotes themself
    for attempt in (
        lambda: members.member_remove(actor=admin, member_id=admin.pk),
        lambda: members.member_change_role(actor=admin, member_id=admin.pk, team_role="finance"),
    ):
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == "last_admin"
    # then they are still the active admin, and nothing was recorded
    admin.refresh_from_db()
    assert (admin.is_active, admin.team_role) == (True, "admin")
    assert not TeamEvent.objects.exists()


def test_the_members_page_runs_a_constant_number_of_queries(client, django_assert_max_num_queries):
    admin = BuyerFactory()
    for n in range(6):
        colleague_of(admin, "finance" if n % 2 else "purchasing")
        members.member_invite(actor=admin, email=f"i{n}@example.com", team_role="finance")
    client.force_login(admin)
    with django_assert_max_num_queries(12):
        assert client.get("/team/").status_code == 200


def test_service_members_of_api_keys_are_not_listed_nor_notified(client):
    from orders.parties import order_buyers
    from tests.orders.factories import order_in

    order = order_in("pending_confirmation")
    api_key_create(actor=order.buyer, name="ERP", team_role="purchasing")
    client.force_login(order.buyer)
    page = client.get("/team/").content.decode()
    assert "api-keys.invalid" not in page
    assert order_buyers(order) == [order.buyer]


# --- API keys belong to the organisation -------------------------------------------------------


def test_a_key_keeps_working_when_its_creator_is_removed():
    # given a supplier company with two admins; one creates a key acting as sales
    creator = SupplierStaffFactory()
    other_admin = colleague_of(creator, "admin")
    api_key, raw_key = api_key_create(actor=creator, name="ERP", team_role="sales")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.get("/api/v1/orders/").status_code == 200
    # when the other admin removes the creator
    members.member_remove(actor=other_admin, member_id=creator.pk)
    # then the key still works, with its role
    response = client.get("/api/v1/orders/")
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.is_active and api_key.user.is_active and api_key.team_role == "sales"
    assert api_key.created_by_id == creator.pk


def test_only_admins_create_keys_and_a_key_role_must_fit_the_organisation():
    admin = BuyerFactory()
    finance = colleague_of(admin, "finance")
    with pytest.raises(NotAllowed) as refused:
        api_key_create(actor=finance, name="ERP", team_role="finance")
    assert refused.value.code == "role_not_allowed"
    with pytest.raises(ValidationFailed):
        api_key_create(actor=admin, name="ERP", team_role="sales")
    assert not ApiKey.objects.exists()


def test_the_service_member_of_a_key_cannot_log_in(client):
    admin = BuyerFactory()
    api_key, _ = api_key_create(actor=admin, name="ERP")
    assert not api_key.user.has_usable_password()
    assert not client.login(username=api_key.user.email, password="")


# --- two admins removing each other at once --------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_admins_removing_each_other_at_once_leave_one_admin():
    # given a company with exactly two admins
    first = BuyerFactory()
    second = colleague_of(first, "admin")
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def remove(name: str, actor: User, member: User) -> None:
        try:
            barrier.wait(timeout=10)
            members.member_remove(actor=actor, member_id=member.pk)
            outcomes[name] = "removed"
        except DomainError as error:
            outcomes[name] = error.code
        finally:
            connection.close()

    # when each removes the other at the same moment
    threads = [
        threading.Thread(target=remove, args=("first", first, second)),
        threading.Thread(target=remove, args=("second", second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then exactly one removal happened and one active admin is left
    assert sorted(map(str, outcomes.values())) in (
        ["not_allowed", "removed"],
        ["last_admin", "removed"],
    )
    admins = User.objects.filter(
        organisation_id=first.organisation_id, team_role="admin", is_active=True
    )
    assert admins.count() == 1
    assert TeamEvent.objects.filter(kind=TeamEvent.Kind.REMOVED).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin():
    first = SupplierStaffFactory()
    second = colleague_of(first, "admin")
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def demote(actor: User, member: User) -> None:
        try:
            barrier.wait(timeout=10)
            members.member_change_role(actor=actor, member_id=member.pk, team_role="sales")
            outcomes.append("demoted")
        except DomainError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(first, second)),
        threading.Thread(target=demote, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert "demoted" in outcomes and len(outcomes) == 2
    assert (
        User.objects.filter(
            organisation_id=first.organisation_id, team_role="admin", is_active=True
        ).count()
        == 1
    )


def test_every_active_member_of_the_party_is_still_told():
    # given a supplier company with sales and finance colleagues (and a removed one, and a key)
    from orders.parties import order_supplier_staff
    from tests.orders.factories import place_order, trade_assured_supplier
    from tests.suppliers.factories import supplier_staff_for
    from tradeassure.platform.models import Notification

    supplier = trade_assured_supplier()
    admin = supplier_staff_for(supplier)
    sales, finance = colleague_of(admin, "sales"), colleague_of(admin, "finance")
    gone = colleague_of(admin, "sales")
    members.member_remove(actor=admin, member_id=gone.pk)
    api_key_create(actor=admin, name="ERP", team_role="sales")
    # when a buyer places an order
    order = place_order(supplier=supplier)
    # then every active person of the supplier is told, whatever their role; nobody else
    told = set(
        Notification.objects.filter(url=order.get_absolute_url()).values_list(
            "recipient_id", flat=True
        )
    )
    assert told == {admin.pk, sales.pk, finance.pk}
    assert set(order_supplier_staff(order)) == {admin, sales, finance}
