"""Identity: sign up as a buyer or a supplier, log in and out, reset a forgotten password."""

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Organisation, User
from accounts.otp import totp_current_token, totp_device_enrol
from accounts.roles import GROUP_FOR_ROLE, declared_staff_permissions
from tests.factories import PASSWORD, BuyerFactory, MediatorFactory, SupplierStaffFactory
from tradeassure.platform.demo import DEMO_PASSWORD, DEMO_USERS

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "a-long-unusual-passphrase-91"


def sign_up_data(**overrides) -> dict:
    data = {
        "role": "buyer",
        "organisation_name": "Harbour Goods Ltd",
        "country": "gb",
        "full_name": "Hana Harbour",
        "email": "Hana@Harbour.example",
        "password": STRONG_PASSWORD,
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("role", "organisation_kind"),
    [("buyer", Organisation.Kind.BUYER), ("supplier_staff", Organisation.Kind.SUPPLIER)],
)
def test_sign_up_creates_company_and_user_and_logs_in(client, role, organisation_kind):
    # given an anonymous visitor
    # when they sign up for their company
    response = client.post(reverse("sign_up"), sign_up_data(role=role))

    # then the company and its first user exist, and the visitor is logged in as that user
    assert response.status_code == 302
    assert response.url == reverse("dashboard")
    user = User.objects.get()
    assert user.email == "hana@harbour.example"
    assert user.role == role
    assert user.full_name == "Hana Harbour"
    assert not user.is_staff
    assert user.check_password(STRONG_PASSWORD)
    assert user.organisation.name == "Harbour Goods Ltd"
    assert user.organisation.kind == organisation_kind
    assert user.organisation.country == "GB"
    assert int(client.session["_auth_user_id"]) == user.pk


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "password"}, "password"),
        ({"password": "hana harbour"}, "password"),
        ({"country": "1x"}, "country"),
        ({"country": "GBR"}, "country"),
        ({"organisation_name": ""}, "organisation_name"),
        ({"role": "mediator"}, "role"),
        ({"role": "partner"}, "role"),
    ],
)
def test_sign_up_with_bad_input_shows_the_error_and_changes_nothing(client, overrides, field):
    # given an existing account
    existing = BuyerFactory()
    users_before, organisations_before = User.objects.count(), Organisation.objects.count()

    # when a visitor submits the form with one bad field
    response = client.post(reverse("sign_up"), sign_up_data(**overrides))

    # then the form comes back with that field's error and nothing was created
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert User.objects.count() == users_before
    assert Organisation.objects.count() == organisations_before
    assert "_auth_user_id" not in client.session
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD)


def test_sign_up_with_a_registered_email_in_any_case_is_refused(client):
    # given an account for the address
    BuyerFactory(email="taken@example.com")
    users_before, organisations_before = User.objects.count(), Organisation.objects.count()

    # when someone signs up with the same address in other letter case
    response = client.post(reverse("sign_up"), sign_up_data(email="TAKEN@example.com"))

    # then nothing is created, and only the address's owner is told, by email (new behaviour:
    # the page no longer says "already exists", which told anyone who is registered)
    assert response.status_code == 302
    assert response.url == reverse("sign_up_check_email")
    page = client.get(response.url).content.decode()
    assert "Check your email" in page
    assert "already" not in page.lower()
    assert "_auth_user_id" not in client.session
    assert (User.objects.count(), Organisation.objects.count()) == (
        users_before,
        organisations_before,
    )
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["taken@example.com"]
    assert "already has an account" in mail.outbox[0].body
    assert reverse("password_reset") in mail.outbox[0].body


def test_log_in_by_email_then_log_out(client):
    # given a supplier staff member
    user = SupplierStaffFactory(email="li@brightway.example")

    # when they log in with their email address (any case) and password
    response = client.post(
        reverse("login"), {"username": "LI@brightway.example", "password": PASSWORD}
    )

    # then they are logged in and sent to the dashboard
    assert response.status_code == 302
    assert response.url == reverse("dashboard")
    assert int(client.session["_auth_user_id"]) == user.pk

    # when they log out
    response = client.post(reverse("logout"))

    # then the session no longer holds them
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_log_in_with_a_wrong_password_is_refused(client):
    # given a buyer
    user = BuyerFactory()
    last_login_before = user.last_login

    # when they log in with a wrong password
    response = client.post(reverse("login"), {"username": user.email, "password": "wrong"})

    # then the form shows an error and nothing changed
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert "_auth_user_id" not in client.session
    user.refresh_from_db()
    assert user.last_login == last_login_before


def test_dashboard_needs_login(client):
    response = client.get(reverse("dashboard"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_password_reset_email_link_sets_a_new_password(client):
    # given a buyer who forgot their password
    user = BuyerFactory(email="forgetful@example.com")

    # when they ask for a reset
    response = client.post(reverse("password_reset"), {"email": "forgetful@example.com"})

    # then one email with a reset link is sent
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["forgetful@example.com"]
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body

    # when they follow the link and choose a new password
    response = client.get(link.group(1), follow=True)
    assert response.status_code == 200
    set_password_url = response.redirect_chain[-1][0]
    response = client.post(
        set_password_url,
        {"new_password1": STRONG_PASSWORD, "new_password2": STRONG_PASSWORD},
    )

    # then the new password works and the old one does not
    assert response.status_code == 302
    assert response.url == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(STRONG_PASSWORD)
    assert not user.check_password(PASSWORD)


def test_password_reset_link_cannot_be_used_twice(client):
    # given a reset link that has already been used
    user = BuyerFactory(email="once@example.com")
    client.post(reverse("password_reset"), {"email": user.email})
    path = re.search(r"(/accounts/password/reset/\S+/)", mail.outbox[0].body).group(1)
    set_password_url = client.get(path, follow=True).redirect_chain[-1][0]
    client.post(
        set_password_url, {"new_password1": STRONG_PASSWORD, "new_password2": STRONG_PASSWORD}
    )

    # when someone opens it again
    response = client.get(path, follow=True)

    # then it is refused and the password stays the one just set
    assert response.status_code == 200
    assert response.context["validlink"] is False
    user.refresh_from_db()
    assert user.check_password(STRONG_PASSWORD)


def test_password_reset_for_an_unknown_email_sends_nothing(client):
    BuyerFactory(email="known@example.com")

    response = client.post(reverse("password_reset"), {"email": "unknown@example.com"})

    # the page does not reveal whether the address exists, and no email goes out
    assert response.status_code == 302
    assert mail.outbox == []


def test_staff_groups_have_exactly_the_declared_permissions():
    # given the groups synced after migrate (the test database was migrated)
    declared = declared_staff_permissions()

    # then each staff role's group holds exactly what the apps declared, no more
    for role, group_name in GROUP_FOR_ROLE.items():
        group = Group.objects.get(name=group_name)
        granted = {
            f"{app_label}.{codename}"
            for app_label, codename in group.permissions.values_list(
                "content_type__app_label", "codename"
            )
        }
        assert granted == declared[role], group_name
        assert "accounts.view_user" in granted


def test_staff_group_sync_removes_permissions_added_by_hand():
    # given someone granted the mediators an extra permission in the admin
    from django.contrib.auth.models import Permission

    from accounts.roles import sync_staff_groups

    mediators = Group.objects.get(name="Mediators")
    mediators.permissions.add(Permission.objects.get(codename="delete_user"))

    # when the groups are synced (as after every migrate)
    sync_staff_groups()

    # then the extra permission is gone again
    assert not mediators.permissions.filter(codename="delete_user").exists()


def test_mediator_reaches_the_admin_but_a_buyer_does_not(client):
    mediator, buyer = MediatorFactory(), BuyerFactory()

    client.force_login(mediator)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 200

    client.force_login(buyer)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("admin:login") in response.url


def test_admin_log_in_ignores_the_case_of_the_email(client):
    # given a mediator whose address is stored lower-case
    mediator = MediatorFactory(email="maya@tradeassure.example")

    # (the admin asks staff for their authenticator's code as well)
    device = totp_device_enrol(user=mediator)

    # when they log in to the admin typing it in another case
    response = client.post(
        reverse("admin:login"),
        {
            "username": "Maya@TradeAssure.example",
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": totp_current_token(device),
            "next": "/admin/",
        },
    )

    # then they are in
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == mediator.pk


def test_seed_demo_creates_a_login_per_role_and_is_idempotent(client):
    # given the demo data loaded once
    call_command("seed_demo", stdout=io.StringIO())
    counts = (User.objects.count(), Organisation.objects.count())

    # when it is loaded again
    call_command("seed_demo", stdout=io.StringIO())

    # then nothing new is created, and every demo user logs in with the demo password
    assert (User.objects.count(), Organisation.objects.count()) == counts
    assert {user.role for user in User.objects.all()} == set(User.Role.values)
    for _key, email, *_ in DEMO_USERS:
        assert client.login(username=email, password=DEMO_PASSWORD), email
    assert (
        User.objects.get(email="mediator@demo.tradeassure.dev")
        .groups.filter(name="Mediators")
        .exists()
    )
