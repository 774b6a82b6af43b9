"""In Chromium: the dispute form shows only the chosen remedy's details (static/js/app.js)."""

import re

import pytest
from playwright.sync_api import expect

from tests.disputes.factories import parties_for
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _log_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main form").get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def test_the_filing_form_shows_only_the_chosen_remedys_fields(browser_page, settings):
    settings.PAYMENT_CAPTURED_HOOKS = [
        *settings.PAYMENT_CAPTURED_HOOKS,
        "disputes.services.dispute_inspection_fee_captured",
    ]
    parties = parties_for("delivered")
    page = browser_page
    _log_in(page, parties.buyer.email)
    page.goto(f"/disputes/open/{parties.order.pk}/")
    remedy = page.get_by_label("What you ask for")
    refund = page.get_by_label("Refund amount")
    replacement = page.get_by_label("The supplier sends replacement goods")
    # a full refund needs no details
    remedy.select_option("full_refund")
    expect(refund).to_be_hidden()
    expect(replacement).to_be_hidden()
    # a partial refund asks for its amount only
    remedy.select_option("partial_refund")
    expect(refund).to_be_visible()
    expect(replacement).to_be_hidden()
    # a new agreement shows its terms, the replacement checkbox labelled as what it does
    remedy.select_option("new_agreement")
    expect(refund).to_be_hidden()
    expect(replacement).to_be_visible()
    replacement.check()
    expect(replacement).to_be_checked()
