"""The demo suppliers: the stories a newcomer and the vetting demo user expect, made idempotently."""

import pytest

from suppliers import demo
from suppliers.models import (
    Product,
    Supplier,
    SupplierStatusChange,
    TradeAssuranceApplication,
    VerificationDocument,
)
from tradeassure.platform.demo import seed_demo_users

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (
            Supplier,
            Product,
            VerificationDocument,
            TradeAssuranceApplication,
            SupplierStatusChange,
        )
    )


def test_demo_suppliers_tell_each_story_and_seeding_twice_changes_nothing():
    users = seed_demo_users()

    demo.seed(users)
    first = _counts()
    demo.seed(users)

    assert _counts() == first
    by_name = {s.legal_name: s for s in Supplier.objects.all()}
    brightway = Supplier.objects.get(organisation=users["supplier"].organisation)
    penang = Supplier.objects.get(organisation=users["supplier2"].organisation)
    assert (brightway.country, brightway.ta_status) == ("CN", "approved")
    assert brightway.ta_limit_usd > 10000  # grown by completed volume
    assert (penang.country, penang.ta_status) == ("MY", "approved")
    assert by_name["KL Rubber Works Sdn Bhd"].ta_status == "suspended"
    assert by_name["Ningbo Harbour Homeware Ltd"].ta_status == "pending"
    assert by_name["Guangzhou Silk Road Textiles"].verification_status == "pending"
    assert by_name["Ohio Fastener Supply LLC"].ta_status == "none"
    assert {s.country for s in by_name.values()} >= {"CN", "MY", "US", "VN"}
