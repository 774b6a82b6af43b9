"""The order conversation: who may read and write, limits, files, receipts, moderation, API."""

from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from orders.conversation import services
from orders.conversation.models import OrderMessage, OrderMessageAttachment, OrderReadReceipt
from orders.models import OrderStatus
from tests.factories import PASSWORD, BuyerFactory, MediatorFactory, SupplierStaffFactory
from tests.orders.factories import PDF_BYTES, order_in, place_order, supplier_user_of
from tradeassure.core import clock
from tradeassure.core.errors import NotAllowed, ValidationFailed
from tradeassure.platform.models import DomainEvent, Notification

pytestmark = pytest.mark.django_db
S = OrderStatus


def _pdf(name: str = "spec.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PDF_BYTES, "application/pdf")


def _login(client, user):
    assert client.login(email=user.email, password=PASSWORD)
    return client


def _thread_state() -> tuple[int, int, int, int]:
    return (
        OrderMessage.objects.count(),
        OrderMessageAttachment.objects.count(),
        Notification.objects.count(),
        DomainEvent.objects.filter(topic="order.message_posted").count(),
    )


@pytest.fixture
def order(db):
    return place_order()


@pytest.fixture
def supplier_user(order):
    return supplier_user_of(order)


# --- the service ------------------------------------------------------------------------------


def test_a_message_notifies_the_other_side_and_publishes_the_event(order, supplier_user):
    # given a placed order and its supplier's staff
    # when the buyer writes
    message = services.order_message_post(order=order, actor=order.buyer, body="  Hello  ")

    # then the message is stored trimmed, as the buyer's, and the supplier's staff are notified
    assert (message.author_party, message.body) == ("buyer", "Hello")
    assert message.author_organisation_id == order.buyer_organisation_id
    notes = list(Notification.objects.filter(title__contains="new message"))
    assert [n.recipient_id for n in notes] == [supplier_user.pk]
    assert "Hello" in notes[0].body and notes[0].url.endswith("#conversation")
    # and one event goes to both organisations
    event = DomainEvent.objects.get(topic="order.message_posted")
    assert event.payload["message"] == message.pk and event.payload["author"] == "buyer"
    assert set(event.audience.values_list("pk", flat=True)) == {
        order.buyer_organisation_id,
        order.supplier.organisation_id,
    }
    # and the buyer's own receipt has moved to it
    assert (
        OrderReadReceipt.objects.get(
            organisation_id=order.buyer_organisation_id
        ).last_read_message_id
        == message.pk
    )


def test_the_supplier_answer_notifies_the_buyer(order, supplier_user):
    services.order_message_post(order=order, actor=supplier_user, body="We can ship in May.")
    assert list(
        Notification.objects.filter(title__contains="new message").values_list(
            "recipient_id", flat=True
        )
    ) == [order.buyer_id]


def test_over_10000_characters_is_refused_clearly_and_stores_nothing(order):
    # given a text one character over the limit, with a file
    before = _thread_state()
    # when the buyer sends it, then it is refused with a clear message on the body field
    with pytest.raises(ValidationFailed) as error:
        services.order_message_post(
            order=order, actor=order.buyer, body="x" * 10_001, files=[_pdf()]
        )
    assert error.value.code == "message_too_long"
    assert "10,000" in error.value.message and "body" in error.value.fields
    # and nothing was stored
    assert _thread_state() == before
    # while exactly 10,000 is accepted
    assert services.order_message_post(order=order, actor=order.buyer, body="y" * 10_000).pk


def test_outsiders_and_staff_cannot_post(order):
    before = _thread_state()
    for outsider in (BuyerFactory(), SupplierStaffFactory(), MediatorFactory()):
        with pytest.raises(NotAllowed):
            services.order_message_post(order=order, actor=outsider, body="hi")
    assert _thread_state() == before


def test_a_bad_file_refuses_the_whole_message(order):
    before = _thread_state()
    with pytest.raises(ValidationFailed) as error:
        services.order_message_post(
            order=order,
            actor=order.buyer,
            body="see files",
            files=[_pdf(), SimpleUploadedFile("page.pdf", b"<html><script>x</script>")],
        )
    assert "files" in error.value.fields
    assert _thread_state() == before


def test_the_rate_limit_counts_a_users_messages_in_the_last_minute(order, settings):
    # given a limit of 3 a minute and a frozen clock (no test depends on machine speed)
    settings.ORDER_CONVERSATION = {**settings.ORDER_CONVERSATION, "RATE_PER_MINUTE": 3}
    other = place_order(buyer=order.buyer)
    start = clock.now()
    with time_machine.travel(start, tick=False):
        for n in range(3):
            services.order_message_post(order=order if n else other, actor=order.buyer, body="x")
        before = _thread_state()
        # when the buyer sends a fourth within the minute, then it is refused with 429
        with pytest.raises(services.MessageRateLimited) as error:
            services.order_message_post(order=order, actor=order.buyer, body="one more")
        assert error.value.status == 429 and error.value.code == "message_rate_limited"
        assert _thread_state() == before
        # and the supplier is not limited by the buyer's messages
        services.order_message_post(order=order, actor=supplier_user_of(order), body="ok")
    # when a minute has passed, then the buyer may write again
    with time_machine.travel(start + timedelta(minutes=1, seconds=1), tick=False):
        services.order_message_post(order=order, actor=order.buyer, body="again")


def test_staff_hide_a_message_with_a_reason_recorded(order):
    message = services.order_message_post(order=order, actor=order.buyer, body="call me +1 555")
    mediator = MediatorFactory()
    # when a party tries, then it is refused
    with pytest.raises(NotAllowed):
        services.order_message_hide(message=message, actor=order.buyer, reason="x")
    # when a mediator hides it without a reason, then it is refused and nothing changes
    with pytest.raises(ValidationFailed):
        services.order_message_hide(message=message, actor=mediator, reason="  ")
    assert OrderMessage.objects.get(pk=message.pk).hidden_at is None
    # when with a reason, then who, when and why are recorded and the text is kept
    services.order_message_hide(message=message, actor=mediator, reason="Off-platform contact")
    row = OrderMessage.objects.get(pk=message.pk)
    assert (row.hidden_by_id, row.hidden_reason, row.body) == (
        mediator.pk,
        "Off-platform contact",
        "call me +1 555",
    )
    assert row.hidden_at is not None
    # and hiding again keeps the first record
    services.order_message_hide(message=message, actor=MediatorFactory(), reason="other")
    assert OrderMessage.objects.get(pk=message.pk).hidden_reason == "Off-platform contact"


# --- the pages --------------------------------------------------------------------------------


def test_parties_post_from_the_order_page_and_see_the_thread(client, order, supplier_user):
    # given the buyer on the order page
    _login(client, order.buyer)
    page = client.get(order.get_absolute_url()).content.decode()
    assert 'id="conversation"' in page and "No messages yet" in page
    # when they post a text with a file
    response = client.post(
        reverse("orders:message_post", args=[order.pk]),
        {"body": "Drawing attached", "attachments": [_pdf("drawing.pdf")]},
    )
    assert response.status_code == 302
    message = OrderMessage.objects.get()
    assert message.attachments.get().original_name == "drawing.pdf"
    # then the supplier sees it with its file
    client.logout()
    _login(client, supplier_user)
    page = client.get(order.get_absolute_url()).content.decode()
    assert "Drawing attached" in page and "drawing.pdf" in page
    # and opening the page marked it read for the supplier's organisation
    assert (
        OrderReadReceipt.objects.get(
            order=order, organisation_id=order.supplier.organisation_id
        ).last_read_message_id
        == message.pk
    )


def test_an_over_long_message_from_the_page_is_refused_and_nothing_stored(client, order):
    _login(client, order.buyer)
    before = _thread_state()
    response = client.post(
        reverse("orders:message_post", args=[order.pk]), {"body": "z" * 10_001}, follow=True
    )
    assert "at most 10,000 characters" in response.content.decode()
    assert _thread_state() == before


def test_outsiders_get_404_on_the_page_the_post_and_the_files(client, order):
    message = services.order_message_post(
        order=order, actor=order.buyer, body="secret", files=[_pdf()]
    )
    attachment = message.attachments.get()
    file_url = reverse("orders:message_attachment", args=[order.pk, message.pk, attachment.pk])
    for outsider in (BuyerFactory(), SupplierStaffFactory()):
        client.logout()
        _login(client, outsider)
        before = _thread_state()
        assert client.get(order.get_absolute_url()).status_code == 404
        assert (
            client.post(reverse("orders:message_post", args=[order.pk]), {"body": "x"}).status_code
            == 404
        )
        assert client.get(file_url).status_code == 404
        assert _thread_state() == before
    # and a file under another order's URL is not found either
    other = place_order(buyer=order.buyer)
    client.logout()
    _login(client, order.buyer)
    wrong = reverse("orders:message_attachment", args=[other.pk, message.pk, attachment.pk])
    assert client.get(wrong).status_code == 404


def test_files_are_served_to_the_parties_and_permitted_staff_only(client, order, supplier_user):
    message = services.order_message_post(
        order=order, actor=order.buyer, body="", files=[_pdf("invoice.pdf")]
    )
    url = reverse(
        "orders:message_attachment", args=[order.pk, message.pk, message.attachments.get().pk]
    )
    for user in (order.buyer, supplier_user, MediatorFactory()):
        client.logout()
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, user
        assert b"".join(response.streaming_content) == PDF_BYTES
        assert response["X-Content-Type-Options"] == "nosniff"
    # staff without the permission to read messages: 404
    from tests.factories import StaffFactory

    plain_staff = StaffFactory(role="vetting")
    client.logout()
    client.force_login(plain_staff)
    assert client.get(url).status_code == 404


def test_hidden_messages_show_as_hidden_by_staff_to_the_parties(client, order, supplier_user):
    message = services.order_message_post(
        order=order, actor=order.buyer, body="rude words", files=[_pdf("x.pdf")]
    )
    mediator = MediatorFactory()
    services.order_message_hide(message=message, actor=mediator, reason="Abusive")
    file_url = reverse(
        "orders:message_attachment", args=[order.pk, message.pk, message.attachments.get().pk]
    )
    # then the parties see "Hidden by staff", neither the text nor the file
    for user in (order.buyer, supplier_user):
        client.logout()
        _login(client, user)
        page = client.get(order.get_absolute_url()).content.decode()
        assert "Hidden by staff." in page and "rude words" not in page and "x.pdf" not in page
        assert client.get(file_url).status_code == 404
    # while the mediator may still open the file
    client.logout()
    client.force_login(mediator)
    assert client.get(file_url).status_code == 200


def test_unread_counts_in_both_lists_with_constant_queries(
    client, django_assert_num_queries, order, supplier_user, settings
):
    settings.ORDER_CONVERSATION = {**settings.ORDER_CONVERSATION, "RATE_PER_MINUTE": 100}
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # given one order where the supplier wrote twice (one hidden) and the buyer once
    services.order_message_post(order=order, actor=supplier_user, body="one")
    hidden = services.order_message_post(order=order, actor=supplier_user, body="two")
    services.order_message_post(order=order, actor=supplier_user, body="three")
    services.order_message_hide(message=hidden, actor=MediatorFactory(), reason="spam")
    services.order_message_post(order=order, actor=order.buyer, body="mine")
    _login(client, order.buyer)
    with CaptureQueriesContext(connection) as small:
        page = client.get(reverse("orders:buyer_list")).content.decode()
    baseline = len(small.captured_queries)
    # then the buyer's list counts the supplier's visible messages after the buyer's receipt
    # (the buyer's own post moved the receipt past them: nothing unread)
    assert "new message" not in page
    # when the supplier writes twice more, on this and on 10 more orders
    more = [place_order(buyer=order.buyer, supplier=order.supplier) for _ in range(10)]
    for target in [order, *more]:
        services.order_message_post(order=target, actor=supplier_user_of(target), body="news")
    services.order_message_post(order=order, actor=supplier_user, body="more news")
    # then the list shows the counts in the same number of queries
    with django_assert_num_queries(baseline):
        page = client.get(reverse("orders:buyer_list")).content.decode()
    assert page.count("1 new message<") == 10 and "2 new messages" in page
    # and the supplier's list counts the buyer's message on the first order
    client.logout()
    _login(client, supplier_user)
    page = client.get(reverse("orders:supplier_list")).content.decode()
    assert page.count("new message") == 0  # the supplier's posts moved its receipt past it


def test_the_supplier_list_shows_the_buyers_unread_messages(client, order, supplier_user):
    services.order_message_post(order=order, actor=order.buyer, body="a")
    services.order_message_post(order=order, actor=order.buyer, body="b")
    _login(client, supplier_user)
    assert "2 new messages" in client.get(reverse("orders:supplier_list")).content.decode()
    # when the supplier opens the order, then the count is gone
    client.get(order.get_absolute_url())
    assert "new message" not in client.get(reverse("orders:supplier_list")).content.decode()


def test_the_order_page_runs_a_constant_number_of_queries_for_any_thread(
    client, django_assert_num_queries, order, supplier_user
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    services.order_message_post(order=order, actor=supplier_user, body="first", files=[_pdf()])
    _login(client, order.buyer)
    client.get(order.get_absolute_url())
    with CaptureQueriesContext(connection) as small:
        assert client.get(order.get_absolute_url()).status_code == 200
    # (read now: the next request resets Django's query log)
    baseline = len(small.captured_queries)
    assert baseline > 0
    for n in range(6):
        author = order.buyer if n % 2 else supplier_user
        services.order_message_post(order=order, actor=author, body=f"m{n}", files=[_pdf()])
    client.get(order.get_absolute_url())  # the receipt moves (a write) once
    with django_assert_num_queries(baseline):
        client.get(order.get_absolute_url())


def test_the_mediator_sees_the_whole_thread_on_the_case_page_and_can_hide(client):
    from tests.disputes.factories import escalated, parties_for

    parties = parties_for("delivered")
    services.order_message_post(
        order=parties.order, actor=parties.buyer, body="Before the claim", files=[_pdf("a.pdf")]
    )
    dispute = escalated(parties)
    message = services.order_message_post(
        order=parties.order, actor=parties.supplier_user, body="please call me"
    )
    mediator = MediatorFactory()
    client.force_login(mediator)
    case_url = reverse("admin:disputes_dispute_change", args=[dispute.pk])
    page = client.get(case_url).content.decode()
    assert "Order conversation" in page
    assert "Before the claim" in page and "please call me" in page and "a.pdf" in page
    # when the mediator hides a message from the case page, then it is recorded and shown
    response = client.post(
        reverse("admin:orders_ordermessage_hide", args=[message.pk]),
        {"reason": "Off-platform contact", "next": case_url},
    )
    assert response.status_code == 302 and response["Location"] == case_url
    page = client.get(case_url).content.decode()
    assert "Off-platform contact" in page and f"Hidden by {mediator.email}" in page


# --- the API ----------------------------------------------------------------------------------


def _api(user):
    from rest_framework.test import APIClient

    from tradeassure.platform.api.services import api_key_create

    client = APIClient()
    _, raw = api_key_create(actor=user, name="tests")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _messages_url(order) -> str:
    return f"/api/v1/orders/{order.pk}/messages/"


def test_api_post_list_and_mark_read(order, supplier_user):
    buyer_api, supplier_api = _api(order.buyer), _api(supplier_user)
    # when the buyer posts JSON and the supplier posts a file (multipart)
    first = buyer_api.post(
        _messages_url(order), {"body": "Hello"}, format="json", HTTP_IDEMPOTENCY_KEY="m1"
    )
    assert first.status_code == 201, first.content
    second = supplier_api.post(
        _messages_url(order),
        {"body": "Spec", "files": [_pdf("spec.pdf")]},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="m2",
    )
    assert second.status_code == 201, second.content
    assert second.json()["attachments"][0]["original_name"] == "spec.pdf"
    # then both see the thread oldest first, paginated
    listing = buyer_api.get(_messages_url(order)).json()
    assert [m["body"] for m in listing["results"]] == ["Hello", "Spec"]
    assert {"next", "previous"} <= set(listing)
    # and the file downloads through its URL
    download = buyer_api.get(listing["results"][1]["attachments"][0]["download_url"])
    assert download.status_code == 200
    # when the buyer marks read up to the supplier's message
    read = buyer_api.post(
        _messages_url(order) + "read/",
        {"up_to": second.json()["id"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="r1",
    )
    assert read.status_code == 200 and read.json()["last_read_message_id"] == second.json()["id"]
    # and a message id of another order is 404
    bad = buyer_api.post(
        _messages_url(order) + "read/", {"up_to": 999999}, format="json", HTTP_IDEMPOTENCY_KEY="r2"
    )
    assert bad.status_code == 404


def test_api_post_is_idempotent(order):
    api = _api(order.buyer)
    first = api.post(
        _messages_url(order), {"body": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    before = _thread_state()
    again = api.post(
        _messages_url(order), {"body": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert _thread_state() == before
    # and without a key the POST is refused
    assert api.post(_messages_url(order), {"body": "x"}, format="json").status_code == 400


def test_api_outsiders_get_404_and_limits_are_problems(order):
    services.order_message_post(order=order, actor=order.buyer, body="secret")
    before = _thread_state()
    outsider = _api(BuyerFactory())
    assert outsider.get(_messages_url(order)).status_code == 404
    response = outsider.post(
        _messages_url(order), {"body": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="o"
    )
    assert response.status_code == 404
    assert (
        outsider.post(
            _messages_url(order) + "read/", {}, format="json", HTTP_IDEMPOTENCY_KEY="o2"
        ).status_code
        == 404
    )
    # and a too-long text is a 400 problem naming the field
    too_long = _api(order.buyer).post(
        _messages_url(order), {"body": "x" * 10_001}, format="json", HTTP_IDEMPOTENCY_KEY="t"
    )
    assert too_long.status_code == 400
    assert too_long.json()["code"] == "message_too_long"
    assert _thread_state() == before


def test_api_hides_a_hidden_messages_text_from_the_parties(order):
    message = services.order_message_post(order=order, actor=order.buyer, body="gone")
    services.order_message_hide(message=message, actor=MediatorFactory(), reason="x")
    row = _api(supplier_user_of(order)).get(_messages_url(order)).json()["results"][0]
    assert (row["hidden"], row["body"], row["attachments"]) == (True, "", [])


def test_api_rate_limit_is_429(order, settings):
    settings.ORDER_CONVERSATION = {**settings.ORDER_CONVERSATION, "RATE_PER_MINUTE": 1}
    api = _api(order.buyer)
    with time_machine.travel(clock.now(), tick=False):
        assert (
            api.post(
                _messages_url(order), {"body": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="a"
            ).status_code
            == 201
        )
        limited = api.post(
            _messages_url(order), {"body": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="b"
        )
    assert limited.status_code == 429 and limited.json()["code"] == "message_rate_limited"
    assert OrderMessage.objects.count() == 1


def test_a_conversation_is_open_from_placement_in_any_status():
    # given orders pending confirmation and completed
    for status in (S.PENDING_CONFIRMATION, S.COMPLETED):
        order = order_in(status)
        assert services.order_message_post(order=order, actor=order.buyer, body="hi").pk


# --- citing a message as evidence in a dispute ------------------------------------------------


def test_a_party_cites_a_message_as_evidence_in_the_open_dispute(client):
    from disputes.models import CitedMessage, DisputeEvent
    from tests.disputes.factories import open_dispute, parties_for

    # given a delivered order with a conversation, then a dispute on it
    parties = parties_for("delivered")
    promise = services.order_message_post(
        order=parties.order, actor=parties.supplier_user, body="We guarantee the drop test."
    )
    dispute = open_dispute(parties)
    events_before = DisputeEvent.objects.filter(dispute=dispute).count()
    # when the buyer cites the supplier's message from the order page
    _login(client, parties.buyer)
    page = client.get(parties.order.get_absolute_url()).content.decode()
    assert "Cite as evidence in the dispute" in page
    response = client.post(
        reverse("disputes:cite_message", args=[parties.order.pk]), {"message_id": promise.pk}
    )
    assert response.status_code == 302 and response["Location"] == dispute.get_absolute_url()
    # then the citation is recorded with one timeline row, and shown on the dispute page
    cited = CitedMessage.objects.get()
    assert (cited.dispute_id, cited.message_id, cited.party) == (dispute.pk, promise.pk, "buyer")
    assert DisputeEvent.objects.filter(dispute=dispute).count() == events_before + 1
    page = client.get(dispute.get_absolute_url()).content.decode()
    assert "We guarantee the drop test." in page and f"Message #{promise.pk}" in page
    # when cited again, then nothing new is recorded
    client.post(
        reverse("disputes:cite_message", args=[parties.order.pk]), {"message_id": promise.pk}
    )
    assert CitedMessage.objects.count() == 1
    assert DisputeEvent.objects.filter(dispute=dispute).count() == events_before + 1


def test_a_hidden_or_foreign_message_cannot_be_cited_and_outsiders_get_404(client):
    from disputes.models import CitedMessage
    from disputes.services import dispute_cite_message
    from tests.disputes.factories import open_dispute, parties_for

    parties = parties_for("delivered")
    hidden = services.order_message_post(order=parties.order, actor=parties.buyer, body="x")
    services.order_message_hide(message=hidden, actor=MediatorFactory(), reason="spam")
    other = place_order(buyer=parties.buyer)
    foreign = services.order_message_post(order=other, actor=parties.buyer, body="elsewhere")
    dispute = open_dispute(parties)
    for message in (hidden, foreign):
        with pytest.raises(ValidationFailed):
            dispute_cite_message(dispute=dispute, actor=parties.buyer, message_id=message.pk)
    # an outsider posting the form gets 404
    _login(client, BuyerFactory())
    response = client.post(
        reverse("disputes:cite_message", args=[parties.order.pk]), {"message_id": hidden.pk}
    )
    assert response.status_code == 404
    assert CitedMessage.objects.count() == 0


def test_the_api_cites_a_message_idempotently():
    from disputes.models import CitedMessage
    from tests.disputes.factories import open_dispute, parties_for

    parties = parties_for("delivered")
    message = services.order_message_post(
        order=parties.order, actor=parties.supplier_user, body="promise"
    )
    dispute = open_dispute(parties)
    api = _api(parties.buyer)
    url = f"/api/v1/disputes/{dispute.pk}/cite-message/"
    first = api.post(
        url,
        {"message_id": message.pk, "note": "their promise"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="c1",
    )
    assert first.status_code == 201, first.content
    assert first.json()["message"] == message.pk
    again = api.post(
        url,
        {"message_id": message.pk, "note": "their promise"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="c1",
    )
    assert again["Idempotent-Replayed"] == "true"
    assert CitedMessage.objects.count() == 1


def test_demo_seeding_adds_a_conversation_once():
    from orders.conversation import demo

    # given the demo's pending order
    order = place_order(purchase_order_number="DEMO-O-pending")
    supplier_user_of(order)
    # when seeded twice
    demo.seed()
    demo.seed()
    # then its conversation is there once, with the supplier's certificate attached
    assert OrderMessage.objects.filter(order=order).count() == len(
        demo.CONVERSATIONS["DEMO-O-pending"]
    )
    assert OrderMessageAttachment.objects.filter(message__order=order).count() == 1
