"""At 390 px (a phone) no page scrolls sideways, and the navigation folds behind a menu button
that works without inline script. Chromium against the live server, on the demo data."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.models import User
from disputes.models import Dispute
from orders.models import Order
from tests.test_browser_csp import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _overflow(page) -> list[str]:
    """The page's width beyond the screen, and the widest elements that cause it."""
    return page.evaluate(
        """() => {
          const width = window.innerWidth;
          if (document.documentElement.scrollWidth <= width) return [];
          return [`scrollWidth ${document.documentElement.scrollWidth} > ${width}`].concat(
            [...document.querySelectorAll('body *')]
              .filter(el => el.getBoundingClientRect().right > width + 1)
              .slice(0, 5)
              .map(el => `${el.tagName.toLowerCase()}.${el.className} right=${el.getBoundingClientRect().right}`));
        }"""
    )


def test_no_page_scrolls_sideways_at_390_px_and_the_menu_folds(browser_page):
    # given the demo data, on a phone-sized screen
    call_command("seed_demo", stdout=io.StringIO())
    page = browser_page
    page.set_viewport_size(PHONE)
    buyer = User.objects.get(email="buyer@demo.tradeassure.dev").organisation
    supplier = User.objects.get(email="supplier@demo.tradeassure.dev").organisation
    # the orders with the most on their page, and a dispute of the buyer's
    buyer_order = Order.objects.filter(buyer_organisation=buyer).order_by("-total").first().pk
    supplier_order = (
        Order.objects.filter(supplier__organisation=supplier).order_by("-total").first().pk
    )
    buyer_dispute = Dispute.objects.filter(order__buyer_organisation=buyer).first().pk
    for path in ("/", "/suppliers/", "/accounts/signup/"):
        page.goto(path)
        assert _overflow(page) == [], path
    # when the buyer and the supplier walk their pages
    walks = {
        "buyer@demo.tradeassure.dev": [
            "/orders/",
            f"/orders/{buyer_order}/",
            "/disputes/",
            f"/disputes/{buyer_dispute}/",
        ],
        "supplier@demo.tradeassure.dev": [
            "/suppliers/dashboard/",
            "/orders/incoming/",
            "/payments/money/",
            f"/orders/{supplier_order}/",
        ],
    }
    for email, paths in walks.items():
        page.context.clear_cookies()
        page.set_viewport_size({"width": 1280, "height": 900})
        log_in(page, email)
        page.set_viewport_size(PHONE)
        for path in paths:
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            # then nothing is wider than the screen
            assert _overflow(page) == [], path
    # and the navigation is folded behind "Menu", which opens it
    links = page.locator("#site-nav")
    expect(links).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(links).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "true")
    assert _overflow(page) == []
