"""Members and their team roles in the Django admin (Organisation and User)."""

import pytest

from accounts.models import TeamEvent, User
from accounts.services import member_staff_changes_record
from tests.accounts.factories import colleague_of
from tests.factories import BuyerFactory, MediatorFactory
from tradeassure.platform.api.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return User.objects.create_superuser(email="root@example.com", password="x-long-pass-42")


def test_the_organisation_admin_lists_members_with_their_roles(client, superuser):
    # given a buyer company with an admin, a finance member and an API key
    admin = BuyerFactory()
    finance = colleague_of(admin, "finance")
    api_key_create(actor=admin, name="ERP", team_role="purchasing")
    client.force_login(superuser)
    # when staff open the organisation in the admin
    page = client.get(f"/admin/accounts/organisation/{admin.organisation_id}/change/")
    # then every member is there with an editable team role, the key's member marked
    html = page.content.decode()
    assert page.status_code == 200
    assert admin.email in html and finance.email in html
    assert 'name="members-0-team_role"' in html
    assert "api-keys.invalid" in html


def test_the_user_admin_shows_and_filters_by_team_role(client, superuser):
    admin = BuyerFactory()
    colleague_of(admin, "finance")
    client.force_login(superuser)
    page = client.get("/admin/accounts/user/?team_role__exact=finance")
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert client.get(f"/admin/accounts/user/{admin.pk}/change/").status_code == 200


def test_a_staff_change_in_the_admin_is_in_the_team_history():
    # given a member changed by staff (role and deactivation)
    staff = MediatorFactory()
    member = colleague_of(BuyerFactory(), "purchasing")
    before = {"team_role": "purchasing", "is_active": True}
    User.objects.filter(pk=member.pk).update(team_role="finance", is_active=False)
    member.refresh_from_db()
    # when the admin records it
    member_staff_changes_record(actor=staff, member=member, before=before)
    # then both facts are in the history, by that staff member
    assert sorted(TeamEvent.objects.values_list("kind", "actor", "from_role", "to_role")) == [
        ("removed", staff.pk, "finance", ""),
        ("role_changed", staff.pk, "purchasing", "finance"),
    ]
