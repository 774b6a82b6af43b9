"""The dispute pages as a new user met them: one id per element, the replacement checkbox
labelled as what it is, remedy details tied to their remedy, human status labels."""

import re
from collections import Counter

import pytest
from django.urls import reverse

from tests.disputes.factories import open_dispute

pytestmark = pytest.mark.django_db


def _ids(body: str) -> Counter:
    return Counter(re.findall(r'\sid="([^"]+)"', body))


def test_the_dispute_page_has_no_duplicate_ids_and_labels_every_control(client, delivered):
    dispute = open_dispute(delivered)
    for user in (delivered.buyer, delivered.supplier_user):
        client.force_login(user)
        body = client.get(reverse("disputes:detail", args=[dispute.pk])).content.decode()
        duplicates = [name for name, count in _ids(body).items() if count > 1]
        assert duplicates == [], duplicates
        # every labelled control's label points at an id that exists
        for target in re.findall(r'<label for="([^"]*)"', body):
            assert target and _ids(body)[target] == 1, target


def test_the_dispute_timeline_shows_statuses_in_words(client, delivered):
    dispute = open_dispute(delivered)
    client.force_login(delivered.buyer)
    body = client.get(reverse("disputes:detail", args=[dispute.pk])).content.decode()
    assert "Awaiting the supplier&#x27;s answer" in body or "Awaiting the supplier's answer" in body
    assert "awaiting_supplier" not in re.sub(r'(value|name|class|data-[a-z-]+)="[^"]*"', "", body)
    assert "new →" not in body


def test_the_order_timeline_shows_statuses_in_words(client, delivered):
    client.force_login(delivered.buyer)
    body = client.get(delivered.order.get_absolute_url()).content.decode()
    assert "— → pending_confirmation" not in body and "→ pending_confirmation" not in body
    assert "Awaiting supplier confirmation" in body


def test_the_filing_form_ties_each_remedy_detail_to_its_remedy(client, delivered):
    client.force_login(delivered.buyer)
    body = client.get(reverse("disputes:open", args=[delivered.order.pk])).content.decode()
    assert "data-remedy-form" in body
    assert re.search(r'data-remedy="partial_refund">\s*<label for="id_refund_amount"', body)
    assert re.search(r'data-remedy="new_agreement">\s*<label for="id_new_shipment_deadline"', body)
    # the replacement checkbox sits inside its own label, which says what it does
    assert re.search(
        r'<label for="id_replacement"><input type="checkbox" name="replacement"[^>]*> '
        r"The supplier sends replacement goods</label>",
        body,
    )


def test_radio_groups_are_fieldsets_with_a_legend(client):
    body = client.get(reverse("sign_up")).content.decode()
    assert re.search(r"<fieldset>\s*<legend>I am</legend>", body)
    assert 'for=""' not in body


def test_the_remedy_script_is_a_static_file(client):
    from pathlib import Path

    from django.contrib.staticfiles import finders

    script = Path(finders.find("js/app.js")).read_text(encoding="utf-8")
    assert "data-remedy-form" in script and "showRemedyFields" in script
