"""Disputes over /api/v1/: open, negotiate, settle, evidence upload and download, withdraw."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from disputes.models import Dispute, DisputeMessage, Evidence
from tests.disputes.factories import PDF_BYTES, open_dispute, parties_for, pdf
from tests.factories import BuyerFactory

pytestmark = pytest.mark.django_db
DISPUTES = "/api/v1/disputes/"


class Keys:
    n = 0


def _post(client, url, data=None, fmt="json"):
    Keys.n += 1
    return client.post(url, data or {}, format=fmt, HTTP_IDEMPOTENCY_KEY=f"d{Keys.n}")


def test_buyer_opens_supplier_counter_proposes_buyer_accepts_and_money_follows(api_client_for):
    # given a delivered post-delivery order of USD 1,400
    parties = parties_for("delivered")
    buyer = api_client_for(parties.buyer)
    supplier = api_client_for(parties.supplier_user)
    # when the buyer opens a quality dispute asking for a USD 300 partial refund
    opened = _post(
        buyer,
        DISPUTES,
        {
            "order_id": parties.order.pk,
            "type": "quality",
            "description": "12 of 100 speakers cracked in the drop test.",
            "remedy": "partial_refund",
            "refund_amount": "300.00",
            "files": [pdf("photos.pdf")],
        },
        "multipart",
    )
    assert opened.status_code == 201, opened.json()
    dispute = opened.json()
    assert dispute["status"] == "awaiting_supplier"
    assert dispute["actions"]["your_party"] == "buyer"
    url = f"{DISPUTES}{dispute['id']}/"
    order = buyer.get(f"/api/v1/orders/{parties.order.pk}/").json()
    assert order["status"] == "disputed"
    assert order["money"]["frozen"] is True
    assert [e["original_name"] for e in dispute["evidence"]] == ["photos.pdf"]
    # the buyer adds more evidence (multipart) and both sides can download it
    uploaded = _post(
        buyer, f"{url}evidence/", {"files": [pdf("report.pdf")], "description": "Lab"}, "multipart"
    )
    assert uploaded.status_code == 201, uploaded.json()
    download_url = uploaded.json()[0]["download_url"]
    download = supplier.get(download_url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF_BYTES
    # the supplier writes and counter-proposes USD 200
    assert _post(supplier, f"{url}messages/", {"body": "We will check."}).status_code == 201
    counter = _post(
        supplier, f"{url}proposals/", {"remedy": "partial_refund", "refund_amount": "200.00"}
    )
    assert counter.status_code == 201, counter.json()
    detail = buyer.get(url).json()
    assert detail["actions"]["accept_proposal_id"] == counter.json()["id"]
    # the buyer accepts: the dispute settles, 200 refunded, the rest released
    settled = _post(buyer, f"{url}accept-proposal/", {"proposal_id": counter.json()["id"]})
    assert settled.status_code == 200, settled.json()
    assert settled.json()["status"] == "resolved"
    money = buyer.get(f"/api/v1/orders/{parties.order.pk}/").json()["money"]
    assert money["refunded"] == "200.00"
    assert money["frozen"] is False
    # and the timeline and the events feed show it
    assert settled.json()["timeline"][0]["action"] == "open"
    topics = [
        e["topic"] for e in buyer.get("/api/v1/events/?topic_prefix=order.").json()["results"]
    ]
    assert "order.disputed" in topics and "order.dispute_resolved" in topics


def test_outsiders_see_nothing_and_change_nothing(api_client_for):
    parties = parties_for("delivered")
    dispute = open_dispute(parties)
    outsider = api_client_for(BuyerFactory())
    url = f"{DISPUTES}{dispute.pk}/"
    assert outsider.get(DISPUTES).json()["results"] == []
    assert outsider.get(url).status_code == 404
    assert _post(outsider, f"{url}messages/", {"body": "hi"}).status_code == 404
    assert _post(outsider, f"{url}withdraw/").status_code == 404
    evidence = Evidence.objects.filter(dispute=dispute).first()
    assert outsider.get(f"{url}evidence/{evidence.pk}/").status_code == 404
    assert DisputeMessage.objects.count() == 0
    dispute.refresh_from_db()
    assert dispute.status == "awaiting_supplier"


def test_rules_answer_with_problems_and_change_nothing(api_client_for):
    parties = parties_for("delivered")
    dispute = open_dispute(parties)
    buyer = api_client_for(parties.buyer)
    supplier = api_client_for(parties.supplier_user)
    url = f"{DISPUTES}{dispute.pk}/"
    # a second dispute on the same order is a conflict
    again = _post(
        buyer,
        DISPUTES,
        {
            "order_id": parties.order.pk,
            "type": "quality",
            "description": "x",
            "remedy": "full_refund",
        },
    )
    assert again.status_code == 409
    # escalating before day 4 is refused
    early = _post(buyer, f"{url}escalate/")
    assert early.status_code == 409
    assert early.json()["code"] == "too_early_to_escalate"
    # the supplier may not withdraw the buyer's claim
    assert _post(supplier, f"{url}withdraw/").status_code == 403
    # a bad file is refused by content
    bad = _post(
        buyer,
        f"{url}evidence/",
        {"files": [SimpleUploadedFile("x.pdf", b"<html>no</html>", "application/pdf")]},
        "multipart",
    )
    assert bad.status_code == 400
    assert Dispute.objects.count() == 1
    assert Evidence.objects.filter(dispute=dispute).count() == 1
    dispute.refresh_from_db()
    assert dispute.status == "awaiting_supplier"


def test_a_quality_claim_without_evidence_is_400_and_files_nothing(api_client_for):
    parties = parties_for("delivered")
    response = _post(
        api_client_for(parties.buyer),
        DISPUTES,
        {
            "order_id": parties.order.pk,
            "type": "quality",
            "description": "Cracked",
            "remedy": "full_refund",
        },
    )
    assert response.status_code == 400
    assert "files" in response.json()["errors"]
    assert Dispute.objects.count() == 0
    parties.order.refresh_from_db()
    assert parties.order.status == "delivered"


def test_buyer_withdraws_and_the_order_continues(api_client_for):
    parties = parties_for("delivered")
    dispute = open_dispute(parties)
    buyer = api_client_for(parties.buyer)
    withdrawn = _post(buyer, f"{DISPUTES}{dispute.pk}/withdraw/", {"reason": "Sorted it out"})
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "cancelled"
    assert buyer.get(f"/api/v1/orders/{parties.order.pk}/").json()["status"] == "delivered"


def test_buyer_escalates_from_day_four(api_client_for):
    import time_machine

    parties = parties_for("delivered")
    dispute = open_dispute(parties)
    buyer = api_client_for(parties.buyer)
    with time_machine.travel(dispute.buyer_may_escalate_at + timedelta(minutes=1)):
        escalated = _post(buyer, f"{DISPUTES}{dispute.pk}/escalate/", {"note": "No answer"})
    assert escalated.status_code == 200, escalated.json()
    assert escalated.json()["status"] == "escalated"


@pytest.mark.parametrize("rows", [2, 12])
def test_dispute_list_runs_a_constant_number_of_queries(
    rows, api_client_for, django_assert_max_num_queries
):
    buyer = BuyerFactory()
    for _ in range(rows):
        open_dispute(_delivered_for(buyer))
    client = api_client_for(buyer)
    with django_assert_max_num_queries(4):
        response = client.get(DISPUTES)
    assert len(response.json()["results"]) == rows


def _delivered_for(buyer):
    from tests.disputes.factories import Parties
    from tests.orders.factories import order_in, supplier_user_of

    order = order_in("delivered", buyer=buyer)
    return Parties(order=order, buyer=buyer, supplier_user=supplier_user_of(order))
