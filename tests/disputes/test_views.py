"""The dispute pages: filing from the order page, negotiation, escalation, evidence, inspectors."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from disputes import selectors, services, tasks
from disputes.models import Dispute, DisputeStatus, DisputeType, Evidence, Inspection, Remedy
from orders.models import OrderStatus
from payments.selectors import escrow_summary
from tests.disputes.factories import (
    PNG_BYTES,
    inspector_for,
    listed_disputes,
    open_dispute,
    pay_inspection_fee,
    pdf,
    png,
    under_review,
)
from tests.factories import BuyerFactory, SupplierStaffFactory
from tradeassure.core import clock
from tradeassure.core.errors import ValidationFailed

S = DisputeStatus
pytestmark = pytest.mark.django_db


def refetch(obj):
    return type(obj).objects.get(pk=obj.pk)


def open_url(order):
    return reverse("disputes:open", args=[order.pk])


def filing(**extra):
    data = {
        "type": DisputeType.QUALITY,
        "description": "12 of 100 speakers cracked in the drop test.",
        "remedy": Remedy.PARTIAL_REFUND,
        "refund_amount": "300.00",
    }
    data.update(extra)
    return data


# --- filing from the order page ----------------------------------------------------------------


def test_order_page_offers_a_dispute_to_the_buyer_only(client, delivered):
    # given a received order
    url = delivered.order.get_absolute_url()

    # when the buyer and the supplier look at the order page
    client.force_login(delivered.buyer)
    buyer_page = client.get(url).content.decode()
    client.force_login(delivered.supplier_user)
    supplier_page = client.get(url).content.decode()

    # then only the buyer sees the entry point
    assert open_url(delivered.order) in buyer_page
    assert open_url(delivered.order) not in supplier_page


def test_buyer_files_a_dispute_through_the_page(client, delivered):
    client.force_login(delivered.buyer)
    page = client.get(open_url(delivered.order))
    assert page.status_code == 200 and "Quality not as agreed" in page.content.decode()
    assert "Late or no shipment" not in page.content.decode()

    response = client.post(
        open_url(delivered.order), {**filing(), "files": [pdf(), png()]}, follow=True
    )

    dispute = Dispute.objects.get()
    assert response.redirect_chain[-1][0] == dispute.get_absolute_url()
    assert refetch(delivered.order).status == OrderStatus.DISPUTED
    assert dispute.evidence.count() == 2
    assert "Dispute D-" in response.content.decode()


def test_quality_claims_need_evidence(client, delivered):
    client.force_login(delivered.buyer)

    response = client.post(open_url(delivered.order), filing())

    assert response.status_code == 400 and "Attach evidence" in response.content.decode()
    assert Dispute.objects.count() == 0


def test_supplier_and_strangers_cannot_reach_the_filing_page(client, delivered):
    for user in (delivered.supplier_user, BuyerFactory()):
        client.force_login(user)
        assert client.get(open_url(delivered.order)).status_code == 404
        assert client.post(open_url(delivered.order), filing()).status_code == 404
    assert Dispute.objects.count() == 0


def _private_files(settings) -> list:
    root = settings.PRIVATE_MEDIA_ROOT / "disputes"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("evidence.pdf", b"MZ\x90\x00 this is a windows executable" * 10, "not an accepted type"),
        ("photo.jpg", b"just some text pretending to be a photo", "not an accepted type"),
        (
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "SVG, HTML",
        ),
        (
            "drawing.png",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
            "SVG, HTML",
        ),
        ("page.html", b"<html><body><script>document.cookie</script></body></html>", "SVG, HTML"),
        ("report.pdf", b"<!DOCTYPE html><html><script>x</script></html>", "SVG, HTML"),
        ("photo.pdf", PNG_BYTES, "content is PNG"),
    ],
)
def test_upload_attacks_are_refused_with_a_clear_message(
    client, delivered, settings, name, content, message
):
    # given the buyer on the filing page
    client.force_login(delivered.buyer)

    # when a hostile file is attached
    upload = SimpleUploadedFile(name, content, "application/pdf")
    response = client.post(open_url(delivered.order), {**filing(), "files": [upload]})

    # then the form says why, and nothing was filed or stored
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Dispute.objects.count() == 0 and Evidence.objects.count() == 0
    assert refetch(delivered.order).status == OrderStatus.DELIVERED
    assert _private_files(settings) == []


def test_oversized_evidence_is_refused(client, delivered, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    client.force_login(delivered.buyer)
    big = SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + b"0" * 2048, "application/pdf")

    response = client.post(open_url(delivered.order), {**filing(), "files": [big]})

    assert response.status_code == 400
    assert "too large" in response.content.decode()
    assert Dispute.objects.count() == 0 and _private_files(settings) == []


def test_a_path_in_the_file_name_never_reaches_the_disk(client, delivered, settings):
    # through the service: refused with a clear message
    hostile = File(io.BytesIO(pdf().read()), name="../../etc/evidence.pdf")
    with pytest.raises(ValidationFailed, match="folder path"):
        services.dispute_open(
            order=delivered.order,
            actor=delivered.buyer,
            type=DisputeType.QUALITY,
            description="x",
            terms=services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
            evidence_files=[hostile],
        )
    assert Dispute.objects.count() == 0
    # through the page: the browser's path is dropped and the file stored under a random name
    client.force_login(delivered.buyer)
    upload = SimpleUploadedFile("../../../etc/passwd.pdf", pdf().read(), "application/pdf")
    client.post(open_url(delivered.order), {**filing(), "files": [upload]})
    evidence = Evidence.objects.get()
    assert "/" not in evidence.original_name and ".." not in evidence.stored_name
    stored = _private_files(settings)
    assert len(stored) == 1 and stored[0].is_relative_to(settings.PRIVATE_MEDIA_ROOT)


# --- evidence is private ---------------------------------------------------------------------


def test_evidence_is_served_to_parties_and_mediators_and_404_to_outsiders(
    client, delivered, mediator
):
    dispute = open_dispute(delivered, files=[pdf(), png()])
    document, image = dispute.evidence.order_by("id")
    url = reverse("disputes:evidence", args=[dispute.pk, document.pk])

    for user in (delivered.buyer, delivered.supplier_user, mediator):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment")
        assert response["X-Content-Type-Options"] == "nosniff"
    client.force_login(delivered.buyer)
    assert client.get(image.get_absolute_url())["Content-Type"] == "image/png"

    for outsider in (BuyerFactory(), SupplierStaffFactory(), inspector_for()):
        client.force_login(outsider)
        assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302
    # and the id of another dispute's file under this dispute is a 404 too
    other = open_dispute(
        __import__("tests.disputes.factories", fromlist=["x"]).parties_for("delivered")
    )
    client.force_login(delivered.buyer)
    stranger_file = other.evidence.get()
    assert (
        client.get(reverse("disputes:evidence", args=[dispute.pk, stranger_file.pk])).status_code
        == 404
    )


# --- negotiation and escalation through the page ---------------------------------------------


def test_settle_by_agreement_through_the_page(client, delivered):
    dispute = open_dispute(delivered, amount=Decimal("300.00"))
    proposal = dispute.proposals.get()
    client.force_login(delivered.supplier_user)
    page = client.get(dispute.get_absolute_url()).content.decode()
    assert "Accept and settle now" in page and "Partial refund of" in page

    url = reverse("disputes:accept", args=[dispute.pk, proposal.pk])
    # one click (the page's link, or a POST without the confirmation) settles nothing
    assert f'href="{url}"' in page
    first = client.post(url)
    assert first.status_code == 302 and first["Location"] == url
    confirm = client.get(url).content.decode()
    assert "Refunded to the buyer" in confirm and "USD 300.00" in confirm
    assert "cannot be undone" in confirm
    assert refetch(dispute).status != S.RESOLVED
    assert escrow_summary(escrow_reference=delivered.order.escrow_reference).refunded == 0

    response = client.post(url, {"confirmed": "yes"}, follow=True)

    assert "settled" in response.content.decode()
    assert refetch(dispute).status == S.RESOLVED
    assert escrow_summary(escrow_reference=delivered.order.escrow_reference).refunded == Decimal(
        "300.00"
    )
    # a replayed POST changes nothing and says why
    again = client.post(url, {"confirmed": "yes"}, follow=True)
    assert again.status_code == 200 and "not possible" in again.content.decode()
    assert escrow_summary(escrow_reference=delivered.order.escrow_reference).refunded == Decimal(
        "300.00"
    )


def test_counter_proposal_and_bad_input_through_the_page(client, delivered):
    dispute = open_dispute(delivered)
    client.force_login(delivered.supplier_user)

    bad = client.post(
        reverse("disputes:propose", args=[dispute.pk]),
        {"remedy": Remedy.PARTIAL_REFUND, "refund_amount": "99999.00"},
    )
    assert bad.status_code == 400 and "is held" in bad.content.decode()
    assert dispute.proposals.count() == 1 and refetch(dispute).status == S.AWAITING_SUPPLIER

    good = client.post(
        reverse("disputes:propose", args=[dispute.pk]),
        {"remedy": Remedy.PARTIAL_REFUND, "refund_amount": "150.00", "message": "Fair?"},
    )
    assert good.status_code == 302 and refetch(dispute).status == S.NEGOTIATING
    client.force_login(delivered.buyer)
    assert "Accept and settle now" in client.get(dispute.get_absolute_url()).content.decode()


def test_reject_with_evidence_and_messages_through_the_page(client, delivered):
    dispute = open_dispute(delivered)
    client.force_login(delivered.supplier_user)
    response = client.post(
        reverse("disputes:reject", args=[dispute.pk]),
        {"message": "QC passed", "files": [pdf("qc.pdf")]},
    )
    assert response.status_code == 302
    client.post(reverse("disputes:message", args=[dispute.pk]), {"body": "Call us?"})
    client.force_login(delivered.buyer)
    page = client.get(dispute.get_absolute_url()).content.decode()
    assert "qc.pdf" in page and "Call us?" in page and "Rejected" in page


def test_buyer_escalates_through_the_page_from_day_4_not_before(client, delivered):
    dispute = open_dispute(delivered)
    client.force_login(delivered.buyer)
    url = reverse("disputes:escalate", args=[dispute.pk])

    with time_machine.travel(dispute.opened_at + timedelta(days=2), tick=False):
        page = client.get(dispute.get_absolute_url()).content.decode()
        assert "You may escalate to a mediator <time datetime=" in page and ">in 1 day<" in page
        response = client.post(url, {"note": "too early"}, follow=True)
        assert "escalate from" in response.content.decode()
    assert refetch(dispute).status == S.AWAITING_SUPPLIER

    with time_machine.travel(dispute.opened_at + timedelta(days=3, minutes=5), tick=False):
        response = client.post(url, {"note": "No answer."}, follow=True)
    assert refetch(dispute).status == S.ESCALATED
    assert "Escalated" in response.content.decode()


def test_auto_escalation_by_the_beat_task_shows_on_the_page(client, delivered):
    dispute = open_dispute(delivered)
    with time_machine.travel(dispute.escalation_due_at + timedelta(minutes=1), tick=False):
        assert tasks.sweep_escalations.delay().get() == 1
    client.force_login(delivered.supplier_user)
    page = client.get(dispute.get_absolute_url()).content.decode()
    assert "Escalated automatically" in page and refetch(dispute).status == S.ESCALATED


def test_withdraw_through_the_page(client, delivered):
    dispute = open_dispute(delivered)
    client.force_login(delivered.buyer)
    client.post(reverse("disputes:withdraw", args=[dispute.pk]), {"note": "Resolved by phone"})
    assert refetch(dispute).status == S.CANCELLED
    assert refetch(delivered.order).status == OrderStatus.DELIVERED


def test_evidence_deadlines_missed_by_each_party_show_on_the_page(client, db, mediator):
    from tests.disputes.factories import parties_for

    for party, expected in (("buyer", S.CANCELLED), ("supplier", S.UNDER_REVIEW)):
        parties = parties_for("delivered")
        dispute = under_review(parties, mediator)
        request = services.dispute_request_evidence(
            dispute=dispute,
            actor=mediator,
            requested_from=party,
            note="Carton photos",
            due_at=clock.now() + timedelta(days=1),
        )
        user = parties.buyer if party == "buyer" else parties.supplier_user
        client.force_login(user)
        assert (
            "The mediator asks you for evidence"
            in client.get(dispute.get_absolute_url()).content.decode()
        )
        with time_machine.travel(request.due_at + timedelta(minutes=1), tick=False):
            tasks.sweep_evidence_requests.delay()
        assert refetch(dispute).status == expected
        page = client.get(dispute.get_absolute_url()).content.decode()
        assert (
            ("Cancelled" in page)
            if party == "buyer"
            else ("decide on what is there" in page or "Under review" in page)
        )


# --- inspection -----------------------------------------------------------------------------


def test_inspection_end_to_end_through_the_pages(client, delivered, mediator):
    # given a mediator-ordered inspection
    dispute = under_review(delivered, mediator)
    inspector = inspector_for()
    inspection = services.dispute_order_inspection(
        dispute=dispute,
        actor=mediator,
        organisation=inspector.organisation,
        instructions="Drop-test 20 units.",
        fee_amount=Decimal("300.00"),
    )
    # the buyer is asked to pay, and the pay button leads to the payment page
    client.force_login(delivered.buyer)
    assert "Pay the inspection fee" in client.get(dispute.get_absolute_url()).content.decode()
    response = client.post(
        reverse("disputes:inspection_pay", args=[dispute.pk, inspection.pk]), {"method": "card"}
    )
    assert response.status_code == 302 and "/payments/" in response["Location"]
    # the inspector sees nothing before the fee is paid
    client.force_login(inspector)
    assert (
        "Inspection " + str(inspection.pk)
        not in client.get(reverse("disputes:inspector_home")).content.decode()
    )
    pay_inspection_fee(refetch(inspection), delivered.buyer)
    home = client.get(reverse("disputes:inspector_home")).content.decode()
    assert f"Inspection {inspection.pk}" in home
    # the inspector can open the buyer's evidence and submits the report
    assert client.get(dispute.evidence.first().get_absolute_url()).status_code == 200
    detail_url = reverse("disputes:inspection_detail", args=[inspection.pk])
    missing = client.post(detail_url, {"verdict": "does_not_conform", "findings": "x"})
    assert missing.status_code == 400
    done = client.post(
        detail_url,
        {"verdict": "does_not_conform", "findings": "14 of 20 cracked", "files": [pdf("r.pdf")]},
    )
    assert done.status_code == 302
    assert refetch(inspection).state == Inspection.State.REPORTED
    assert refetch(dispute).status == S.UNDER_REVIEW
    # another inspection company gets 404
    client.force_login(inspector_for())
    assert client.get(detail_url).status_code == 404


def test_inspector_home_is_for_inspectors_only(client, delivered):
    client.force_login(delivered.buyer)
    assert client.get(reverse("disputes:inspector_home")).status_code == 404


# --- constant queries -------------------------------------------------------------------------


def _grow(dispute, parties, count):
    for n in range(count):
        services.dispute_message_send(dispute=dispute, actor=parties.buyer, body=f"message {n}")
        services.dispute_evidence_add(
            dispute=dispute, actor=parties.supplier_user, files=[pdf(f"f{n}.pdf")]
        )


def test_dispute_page_runs_a_constant_number_of_queries(
    client, delivered, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    dispute = open_dispute(delivered)
    client.force_login(delivered.buyer)
    _grow(dispute, delivered, 1)
    client.get(dispute.get_absolute_url())
    with CaptureQueriesContext(connection) as small:
        assert client.get(dispute.get_absolute_url()).status_code == 200
    _grow(dispute, delivered, 10)
    with CaptureQueriesContext(connection) as large:
        assert client.get(dispute.get_absolute_url()).status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(dispute.get_absolute_url())


def test_dispute_list_runs_a_constant_number_of_queries(client, db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    buyer = BuyerFactory()
    listed_disputes(2, buyer=buyer)
    client.force_login(buyer)
    client.get(reverse("disputes:list"))
    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse("disputes:list")).status_code == 200
    listed_disputes(10, buyer=buyer)
    with CaptureQueriesContext(connection) as large:
        page = client.get(reverse("disputes:list"))
    assert page.content.decode().count("Listed dispute") == 0  # the list shows references
    assert page.content.decode().count("D-0") >= 12
    assert len(large.captured_queries) == len(small.captured_queries)
    # and a stranger sees none of them
    client.force_login(BuyerFactory())
    assert "D-0" not in client.get(reverse("disputes:list")).content.decode()


def test_the_dispute_page_shows_its_progress_and_money_first(client, delivered):
    # given a dispute the supplier has not answered yet
    dispute = open_dispute(delivered, amount=Decimal("300.00"))
    client.force_login(delivered.buyer)

    # when the buyer opens it
    page = client.get(dispute.get_absolute_url()).content.decode()

    # then the stepper stands at the supplier's answer, and the money at a glance leads
    assert page.index('class="stepper"') < page.index('class="money-summary"')
    current = page[page.index('aria-current="step"') :][:200]
    assert "Supplier answers" in current
    assert "<dt>Buyer asks for</dt><dd>USD 300.00</dd>" in page
    steps = [(s.key, s.state) for s in selectors.dispute_progress(refetch(dispute))]
    assert steps[:2] == [("opened", "done"), ("answer", "current")]

    # when the supplier settles it by accepting (no mediator)
    services.dispute_accept(
        dispute=refetch(dispute),
        actor=delivered.supplier_user,
        proposal_id=dispute.proposals.get().pk,
    )

    # then every step is done and the mediator step says it was settled between the parties
    steps = selectors.dispute_progress(refetch(dispute))
    assert {s.state for s in steps} == {"done"}
    assert "Settled between you" in steps[3].label
