"""A partner's generated client: openapi-python-client builds a package from the live server's
schema with no warning, every module of it imports, and a whole protected order (place,
confirm, pay by sandbox card, ship with documents, confirm receipt, a dispute with evidence
settled by an accepted proposal) runs through it alone, with no hand-written request."""

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.request import urlopen

import pytest

from tests.factories import BuyerFactory
from tests.orders.factories import PDF_BYTES, trade_assured_supplier
from tests.suppliers.factories import supplier_staff_for
from tradeassure.core import clock
from tradeassure.platform.api.services import api_key_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
PACKAGE = "tradeassure_client"


def _generate(schema_url: str, into: Path) -> tuple[str, object]:
    """Fetch the schema, run the generator, import the package; returns (output, package)."""
    with urlopen(schema_url, timeout=60) as response:
        schema = json.loads(response.read())
    path = into / "openapi.json"
    path.write_text(json.dumps(schema))
    config = into / "config.yml"
    config.write_text(f"package_name_override: {PACKAGE}\nproject_name_override: {PACKAGE}\n")
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(path),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(into / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # Its post-generation hook runs `ruff`: the venv's.
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    sys.path.insert(0, str(into))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    return output, importlib.import_module(PACKAGE)


@pytest.fixture
def generated(live_server, tmp_path):
    output, package = _generate(f"{live_server.url}/api/schema/?format=json", tmp_path)
    yield output, package
    sys.path.remove(str(tmp_path))


def _ok(response, status: int):
    assert response.status_code == status, response.content[:2000]
    return response.parsed


def test_the_generated_client_drives_a_whole_order_and_a_dispute(live_server, generated):
    output, package = generated
    # then generation warned about nothing and every module imports
    assert "warning" not in output.lower(), output
    assert "error" not in output.lower(), output
    failures = []
    for module in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
        try:
            importlib.import_module(module.name)
        except Exception as error:  # collect them all
            failures.append(f"{module.name}: {error!r}")
    assert failures == []

    from tradeassure_client import AuthenticatedClient
    from tradeassure_client.api.disputes import (
        disputes_accept_proposal_create,
        disputes_create,
        disputes_evidence_create,
        disputes_evidence_retrieve,
        disputes_proposals_create,
        disputes_retrieve,
    )
    from tradeassure_client.api.events import events_list
    from tradeassure_client.api.orders import (
        orders_confirm_create,
        orders_confirm_receipt_create,
        orders_create,
        orders_documents_retrieve,
        orders_list,
        orders_mark_ready_create,
        orders_pay_create,
        orders_retrieve,
        orders_ship_create,
    )
    from tradeassure_client.api.payments import payments_retrieve, payments_sandbox_card_create
    from tradeassure_client.models import (
        AcceptProposalInputRequest,
        DisputeOpenMultipartInputRequest,
        DisputeTypeEnum,
        EvidenceUploadInputRequest,
        NoteInputRequest,
        OrderCreateInputRequest,
        PayInputRequest,
        ProposeInputRequest,
        RequestableRemedyEnum,
        SandboxCardInputRequest,
        ShipInputRequest,
    )
    from tradeassure_client.types import File

    # given a buyer and a Trade Assured supplier, each with an API key, as generated clients
    supplier = trade_assured_supplier()
    buyer_user, seller_user = BuyerFactory(), supplier_staff_for(supplier)
    buyer = AuthenticatedClient(
        base_url=live_server.url, token=api_key_create(actor=buyer_user, name="gen")[1]
    )
    seller = AuthenticatedClient(
        base_url=live_server.url, token=api_key_create(actor=seller_user, name="gen")[1]
    )

    def key() -> str:
        return str(uuid.uuid4())

    def pdf(name: str) -> File:
        import io

        return File(payload=io.BytesIO(PDF_BYTES), file_name=name, mime_type="application/pdf")

    # when the buyer places a protected order paid in full up front
    body = OrderCreateInputRequest.from_dict(
        {
            "supplier_id": supplier.pk,
            "purchase_order_number": "PO-GEN-1",
            "terms": {
                "currency": "USD",
                "coverage": "post_delivery",
                "items": [
                    {
                        "description": "Bluetooth speaker",
                        "quality_requirements": "10 W RMS; drop test 1.2 m",
                        "quantity": "100",
                        "unit": "pcs",
                        "unit_price": "12.50",
                    }
                ],
                "shipment_deadline": (clock.now() + timedelta(days=40)).isoformat(),
                "incoterm": "FOB",
                "destination": "Felixstowe, GB",
                "shipping_method": "sea",
                "shipping_fee": "150.00",
                "initial_payment_amount": "1400.00",
            },
        }
    )
    order = _ok(orders_create.sync_detailed(client=buyer, body=body, idempotency_key=key()), 201)
    assert order.status.value == "pending_confirmation"
    assert order.total == "1400.00"
    listed = _ok(orders_list.sync_detailed(client=buyer), 200)
    assert [row.id for row in listed.results] == [order.id]
    assert listed.next_cursor is None

    # the supplier confirms
    confirmed = _ok(
        orders_confirm_create.sync_detailed(
            order.id, client=seller, body=NoteInputRequest(note="OK"), idempotency_key=key()
        ),
        200,
    )
    assert confirmed.status.value == "awaiting_payment"

    # the buyer pays by sandbox card
    payment = _ok(
        orders_pay_create.sync_detailed(
            order.id,
            client=buyer,
            body=PayInputRequest.from_dict({"method": "card"}),
            idempotency_key=key(),
        ),
        201,
    )
    _ok(
        payments_sandbox_card_create.sync_detailed(
            str(payment.id),
            client=buyer,
            body=SandboxCardInputRequest(card_number="4242 4242 4242 4242"),
            idempotency_key=key(),
        ),
        202,
    )
    captured = _ok(payments_retrieve.sync_detailed(str(payment.id), client=buyer), 200)
    assert captured.status.value == "captured"
    assert _ok(orders_retrieve.sync_detailed(order.id, client=buyer), 200).status.value == (
        "in_production"
    )

    # the supplier finishes production and ships with the three documents
    _ok(
        orders_mark_ready_create.sync_detailed(
            order.id, client=seller, body=NoteInputRequest(), idempotency_key=key()
        ),
        200,
    )
    shipped = _ok(
        orders_ship_create.sync_detailed(
            order.id,
            client=seller,
            body=ShipInputRequest(
                carrier="Maersk",
                tracking_number="MSKU7654321",
                shipped_on=clock.now().date(),
                commercial_invoice=pdf("invoice.pdf"),
                bill_of_lading=pdf("bol.pdf"),
                packing_list=pdf("packing.pdf"),
            ),
            idempotency_key=key(),
        ),
        200,
    )
    assert shipped.status.value == "shipped"
    document = shipped.shipment.documents[0]
    downloaded = _ok(
        orders_documents_retrieve.sync_detailed(order.id, document.id, client=buyer), 200
    )
    assert downloaded.payload.read() == PDF_BYTES

    # the buyer confirms receipt
    delivered = _ok(
        orders_confirm_receipt_create.sync_detailed(
            order.id, client=buyer, body=NoteInputRequest(), idempotency_key=key()
        ),
        200,
    )
    assert delivered.status.value == "delivered"

    # and opens a quality dispute with evidence attached (multipart)
    dispute = _ok(
        disputes_create.sync_detailed(
            client=buyer,
            body=DisputeOpenMultipartInputRequest(
                order_id=order.id,
                type_=DisputeTypeEnum.QUALITY,
                description="12 of 100 speakers cracked in the drop test.",
                remedy=RequestableRemedyEnum.PARTIAL_REFUND,
                refund_amount="300.00",
                files=[pdf("photos.pdf")],
            ),
            idempotency_key=key(),
        ),
        201,
    )
    assert dispute.status.value == "awaiting_supplier"
    assert dispute.outcome is None
    assert [e.original_name for e in dispute.evidence] == ["photos.pdf"]
    more = _ok(
        disputes_evidence_create.sync_detailed(
            dispute.id,
            client=buyer,
            body=EvidenceUploadInputRequest(files=[pdf("report.pdf")], description="Lab"),
            idempotency_key=key(),
        ),
        201,
    )
    assert [e.original_name for e in more] == ["report.pdf"]
    evidence_bytes = _ok(
        disputes_evidence_retrieve.sync_detailed(dispute.id, more[0].id, client=seller), 200
    )
    assert evidence_bytes.payload.read() == PDF_BYTES

    # the supplier counter-proposes USD 200 and the buyer accepts it
    counter = _ok(
        disputes_proposals_create.sync_detailed(
            dispute.id,
            client=seller,
            body=ProposeInputRequest.from_dict(
                {"remedy": "partial_refund", "refund_amount": "200.00", "message": "200?"}
            ),
            idempotency_key=key(),
        ),
        201,
    )
    settled = _ok(
        disputes_accept_proposal_create.sync_detailed(
            dispute.id,
            client=buyer,
            body=AcceptProposalInputRequest(proposal_id=counter.id),
            idempotency_key=key(),
        ),
        200,
    )
    assert settled.status.value == "resolved"
    assert settled.outcome.value == "partial_refund"
    assert _ok(disputes_retrieve.sync_detailed(dispute.id, client=buyer), 200).outcome.value == (
        "partial_refund"
    )

    # then the money followed, and the events feed pages by its cursor field
    final = _ok(orders_retrieve.sync_detailed(order.id, client=buyer), 200)
    assert final.status.value == "completed"
    assert final.money.refunded == "200.00"
    assert final.money.released == "1200.00"
    topics, cursor = [], None
    while True:
        page = _ok(
            events_list.sync_detailed(
                client=buyer,
                topic_prefix="order.",
                page_size=2,
                **({"cursor": cursor} if cursor else {}),
            ),
            200,
        )
        topics += [event.topic.value for event in page.results]
        cursor = page.next_cursor
        if not cursor:
            break
    assert topics[:2] == ["order.placed", "order.confirmed"]
    assert "order.dispute_resolved" in topics
    assert all(isinstance(event.data.to_dict(), dict) for event in page.results)
