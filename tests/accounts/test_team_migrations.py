"""The teams migrations keep what existed working: every user becomes admin, every API key
gets its own service member (so it survives its creator)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BEFORE = [("accounts", "0004_approved_inspection_companies")]
AFTER = [("accounts", "0006_api_keys_act_through_service_members")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_users_become_admins_and_keys_get_their_own_member():
    from django.utils import timezone

    # given, before teams, a buyer with an API key it created
    old = _migrate(BEFORE)
    organisation = old.get_model("accounts", "Organisation").objects.create(
        name="Old Co", kind="buyer"
    )
    buyer = old.get_model("accounts", "User").objects.create(
        email="old@example.com", role="buyer", organisation=organisation, password="!"
    )
    old.get_model("accounts", "ApiKey").objects.create(
        organisation=organisation,
        user=buyer,
        name="ERP",
        prefix="ta_0123456789",
        hashed_secret="0" * 64,
        created_at=timezone.now(),
        created_by=buyer,
    )
    try:
        # when the teams migrations run
        new = _migrate(AFTER)
        User = new.get_model("accounts", "User")
        key = new.get_model("accounts", "ApiKey").objects.get()
        # then the buyer is its company's admin and the key acts through its own member
        assert User.objects.get(pk=buyer.pk).team_role == "admin"
        member = User.objects.get(pk=key.user_id)
        assert member.pk != buyer.pk
        assert (member.is_api_service, member.role, member.team_role) == (True, "buyer", "admin")
        assert member.organisation_id == organisation.pk and member.is_active
        assert key.created_by_id == buyer.pk
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
