"""Run inside the fault tests' stack environment: `python -m tests.faults.stack_tool seed`.

`seed` creates a Trade Assured supplier, its staff and a buyer, each with an API key, and prints
them as JSON (the template database the tests copy keeps them).
"""

import json
import sys

import django


def seed() -> dict:
    from tests.factories import BuyerFactory
    from tests.orders.factories import trade_assured_supplier
    from tests.suppliers.factories import supplier_staff_for
    from tradeassure.platform.api.services import api_key_create

    supplier = trade_assured_supplier()
    staff = supplier_staff_for(supplier)
    buyers = [BuyerFactory() for _ in range(2)]
    return {
        "supplier_id": supplier.pk,
        "supplier_key": api_key_create(actor=staff, name="faults")[1],
        "buyer_keys": [api_key_create(actor=buyer, name="faults")[1] for buyer in buyers],
    }


if __name__ == "__main__":
    django.setup()
    command = sys.argv[1]
    if command == "seed":
        print(json.dumps(seed()))
    else:
        raise SystemExit(f"unknown command {command!r}")
