"""End to end in a real browser: a buyer signs up, lands on their dashboard, logs out and back in."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-unusual-passphrase-91"


def test_buyer_signs_up_logs_out_and_logs_back_in(browser_page, live_server):
    page = browser_page

    # given the home page, reached by a visitor
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("escrow")

    # when they sign up as a buyer
    page.get_by_role("button", name="Start buying").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/$"))
    page.get_by_label("a buyer, placing protected orders").check()
    page.get_by_label("Company name").fill("Harbour Goods Ltd")
    page.get_by_label("Country (ISO code, e.g. US, CN)").fill("gb")
    page.get_by_label("Your name").fill("Hana Harbour")
    page.get_by_label("Email").fill("hana@harbour.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main form").get_by_role("button", name="Sign up").click()

    # then they land on their dashboard, logged in, welcomed by name
    expect(page.get_by_text("Welcome to TradeAssure, Hana Harbour.")).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"/accounts/(signup|login)/"))
    user = User.objects.get(email="hana@harbour.example")
    assert user.role == User.Role.BUYER
    assert user.organisation.name == "Harbour Goods Ltd"

    # when they log out from the account menu
    page.locator("details.dropdown summary").click()
    page.get_by_role("button", name="Log out").click()

    # then they are logged out, back on the home page
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.locator("details.dropdown")).to_have_count(0)

    # when they log back in with the address in capitals
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("HANA@harbour.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main form").get_by_role("button", name="Log in").click()

    # then they are back on their dashboard as themselves
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    expect(page.locator("details.dropdown summary")).to_have_text("Hana Harbour")
    assert User.objects.count() == 1


def test_a_bad_sign_up_shows_the_error_in_the_page_and_creates_nothing(browser_page):
    page = browser_page

    # when a visitor signs up with a password that is too common
    page.goto("/accounts/signup/")
    page.get_by_label("Company name").fill("Harbour Goods Ltd")
    page.get_by_label("Country (ISO code, e.g. US, CN)").fill("GB")
    page.get_by_label("Your name").fill("Hana Harbour")
    page.get_by_label("Email").fill("hana@harbour.example")
    page.get_by_label("Password").fill("password")
    page.locator("main form").get_by_role("button", name="Sign up").click()

    # then the form explains why, and no account exists
    expect(page.get_by_text("This password is too common.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/signup/$"))
    assert User.objects.count() == 0
