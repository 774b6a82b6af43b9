"""Time zone per user: chosen from the browser at sign-up, changed on the profile page, used on
every page (the middleware) and in every email (moments written out per recipient)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.urls import reverse

from accounts.models import User
from tests.factories import BuyerFactory
from tests.orders.factories import order_in, place_order, supplier_user_of
from tradeassure.core import clock
from tradeassure.core.moments import local_text, moment_token, relative_text, render_moments
from tradeassure.platform.events import notify
from tradeassure.platform.models import Notification

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "a-long-unusual-passphrase-91"


def _sign_up(client, **extra):
    data = {
        "role": "buyer",
        "organisation_name": "Harbour Goods Ltd",
        "country": "gb",
        "full_name": "Hana Harbour",
        "email": "hana@harbour.example",
        "password": STRONG_PASSWORD,
        **extra,
    }
    return client.post(reverse("sign_up"), data)


def test_sign_up_keeps_the_zone_the_browser_sent(client):
    # given the sign-up page, with the hidden field the static script fills
    page = client.get(reverse("sign_up")).content.decode()
    assert 'name="time_zone"' in page and "data-browser-time-zone" in page
    assert "js/timezone.js" in page

    # when a visitor signs up from a browser in Tokyo
    response = _sign_up(client, time_zone="Asia/Tokyo")

    # then their account reads times in Tokyo
    assert response.status_code == 302
    assert User.objects.get().time_zone == "Asia/Tokyo"


@pytest.mark.parametrize("sent", ["", "Mars/Olympus_Mons", "../../etc/passwd", "x" * 64])
def test_sign_up_with_no_or_an_unknown_zone_falls_back_to_utc(client, sent):
    # when the hidden field is empty (no script) or holds a name zoneinfo does not know
    response = _sign_up(client, time_zone=sent)

    # then the account is opened anyway, in UTC
    assert response.status_code == 302
    assert User.objects.get().time_zone == "UTC"


def test_the_profile_page_changes_the_zone_and_refuses_an_unknown_one(client):
    # given a buyer in UTC
    user = BuyerFactory()
    client.force_login(user)
    assert client.get(reverse("profile")).status_code == 200

    # when they choose an unknown zone
    bad = client.post(reverse("profile"), {"full_name": "A", "time_zone": "Nowhere/City"})

    # then the form says so and nothing changed
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()
    user.refresh_from_db()
    assert user.time_zone == "UTC" and user.full_name != "A"

    # when they choose Paris
    good = client.post(reverse("profile"), {"full_name": "Ann", "time_zone": "Europe/Paris"})

    # then it is saved
    assert good.status_code == 302
    user.refresh_from_db()
    assert user.time_zone == "Europe/Paris" and user.full_name == "Ann"


def test_pages_show_times_in_the_viewers_zone_with_the_exact_time_on_hover(client):
    # given an order waiting for confirmation, viewed by its buyer in Tokyo and supplier in Paris
    order = place_order()
    buyer = order.buyer
    buyer.time_zone = "Asia/Tokyo"
    buyer.save()
    supplier_user = supplier_user_of(order)
    supplier_user.time_zone = "Europe/Paris"
    supplier_user.save()
    due = order.confirmation_due_at

    # when each opens the order page
    client.force_login(buyer)
    tokyo = client.get(order.get_absolute_url()).content.decode()
    client.force_login(supplier_user)
    paris = client.get(order.get_absolute_url()).content.decode()

    # then the deadline reads relative, with the exact local time (and zone) on hover
    in_tokyo = local_text(due, "Asia/Tokyo")
    in_paris = local_text(due, "Europe/Paris")
    assert in_tokyo != in_paris
    assert f'datetime="{due.isoformat(timespec="seconds")}"' in tokyo
    assert f'title="{in_tokyo} (Asia/Tokyo)"' in tokyo
    assert f'title="{in_paris} (Europe/Paris)"' in paris
    assert ">in 29 days<" in tokyo or ">in 30 days<" in tokyo
    # and the placing time is written in the viewer's zone too, never "UTC" for Tokyo
    assert "JST" in tokyo and " UTC" not in tokyo


def test_the_zone_does_not_leak_to_the_next_request(client):
    # given a buyer in Tokyo has just viewed a page
    order = place_order()
    order.buyer.time_zone = "Asia/Tokyo"
    order.buyer.save()
    client.force_login(order.buyer)
    client.get(order.get_absolute_url())

    # when an anonymous visitor opens a page on the same thread
    from django.test import Client
    from django.utils import timezone

    Client().get(reverse("home"))

    # then nothing is active after the requests
    assert timezone.get_current_timezone_name() == "UTC"


def test_emails_and_notifications_show_moments_in_each_recipients_zone():
    # given two people in different zones and a deadline
    tokyo = BuyerFactory(time_zone="Asia/Tokyo")
    lima = BuyerFactory(time_zone="America/Lima")
    due = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    # when one notice with that deadline goes to both
    with TestCase.captureOnCommitCallbacks(execute=True):
        notify(
            users=[tokyo, lima],
            title=f"pay by {moment_token(due)}",
            body=f"The deadline is {moment_token(due)}.",
        )
    from tradeassure.platform.outbox import outbox_dispatch_due

    outbox_dispatch_due()

    # then each reads it in their own zone, in the bell and in the email
    by_address = {message.to[0]: message for message in mail.outbox}
    assert by_address[tokyo.email].subject == "[TradeAssure] pay by 2026-12-03 21:00 JST"
    assert "The deadline is 2026-12-03 21:00 JST." in by_address[tokyo.email].body
    assert by_address[lima.email].subject == "[TradeAssure] pay by 2026-12-03 07:00 -05"
    assert Notification.objects.get(recipient=lima).body == "The deadline is 2026-12-03 07:00 -05."
    assert "[[moment:" not in "".join(m.body + m.subject for m in mail.outbox)


def test_an_order_email_names_the_deadline_in_the_recipients_zone():
    # given a supplier whose staff read times in Shanghai
    order = order_in("awaiting_payment")
    supplier_user = supplier_user_of(order)
    supplier_user.time_zone = "Asia/Shanghai"
    supplier_user.save()
    from orders.services.payment import _tell_captured

    # when the initial payment is captured (the supplier is told to ship by the deadline)
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        _tell_captured(order, "initial")
    from tradeassure.platform.outbox import outbox_dispatch_due

    outbox_dispatch_due()

    # then the email gives the shipment deadline in Shanghai time
    body = next(m.body for m in mail.outbox if m.to == [supplier_user.email])
    assert f"Ship by {local_text(order.shipment_deadline, 'Asia/Shanghai')}." in body
    assert "CST" in body


def test_relative_text_reads_like_people_speak():
    now = clock.now()
    assert relative_text(now + timedelta(days=2, hours=3), now) == "in 2 days"
    assert relative_text(now + timedelta(hours=5, minutes=10), now) == "in 5 hours"
    assert relative_text(now + timedelta(days=1, hours=2), now) == "in 1 day 2 h"
    assert relative_text(now - timedelta(days=3), now) == "3 days ago"
    assert render_moments("no moments here", "Asia/Tokyo") == "no moments here"


def test_a_refusal_shown_on_a_page_names_the_time_in_the_viewers_zone(client):
    # given a dispute the buyer (in Tokyo) may escalate only from day 4
    from tests.disputes.factories import open_dispute, parties_for

    parties = parties_for("delivered")
    dispute = open_dispute(parties)
    parties.buyer.time_zone = "Asia/Tokyo"
    parties.buyer.save()
    client.force_login(parties.buyer)

    # when they try to escalate at once
    response = client.post(
        reverse("disputes:escalate", args=[dispute.pk]), {"note": "now"}, follow=True
    )

    # then the refusal gives the moment in Tokyo time, not a placeholder or UTC
    page = response.content.decode()
    assert local_text(dispute.buyer_may_escalate_at, "Asia/Tokyo") in page
    assert "[[moment:" not in page
