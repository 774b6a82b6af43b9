"""At 390 px (a phone) no page scrolls sideways, and the navigation folds behind a menu button
that works without inline script. Chromium against the live server, on the demo data."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

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
    from orders.models import Order

    order = Order.objects.order_by("-total").first()
    pages = {"/": None, "/suppliers/": None}
    for path in pages:
        page.goto(path)
        assert _overflow(page) == [], path
    # when the buyer and the supplier walk their pages
    walks = {
        "buyer@demo.tradeassure.dev": ["/orders/", f"/orders/{order.pk}/", "/disputes/"],
        "supplier@demo.tradeassure.dev": [
            "/suppliers/dashboard/",
            "/orders/incoming/",
            "/payments/money/",
            f"/orders/{order.pk}/",
        ],
    }
    for email, paths in walks.items():
        page.context.clear_cookies()
        page.set_viewport_size({"width": 1280, "height": 900})
        log_in(page, email)
        page.set_viewport_size(PHONE)
        for path in paths:
            response = page.goto(path)
            if response.status == 404:  # the order belongs to the other demo supplier
                continue
            # then nothing is wider than the screen
            assert _overflow(page) == [], path
    # and the navigation is folded behind "Menu", which opens it
    links = page.locator("#site-nav")
    expect(links).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(links).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "true")
    assert _overflow(page) == []
