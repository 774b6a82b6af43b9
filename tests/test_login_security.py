"""Log-in protection: brute-force lockout (django-axes), a TOTP second factor for the admin
(django-otp), a sign-up that does not reveal registered addresses, and the site-wide CSP."""

import io
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.admin import OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.otp import totp_current_token, totp_device_enrol
from tests.factories import PASSWORD, BuyerFactory, MediatorFactory, VettingFactory
from tests.otp import verify_staff_device

pytestmark = pytest.mark.django_db
BASE_DIR = Path(settings.BASE_DIR)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- Brute force -----------------------------------------------------------------------------


def test_fifty_wrong_passwords_lock_the_site_login_and_the_right_one_then_fails():
    # given a buyer and an attacker guessing at their password
    buyer = BuyerFactory(email="hana@harbour.example")
    client = Client()
    statuses = {
        client.post(
            reverse("login"), {"username": "hana@harbour.example", "password": f"guess-{n}"}
        ).status_code
        for n in range(50)
    }

    # when the right password comes after them
    response = client.post(
        reverse("login"), {"username": "hana@harbour.example", "password": PASSWORD}
    )

    # then the account is locked: no session, the lockout page with 429
    assert statuses == {200, 429}
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert not logged_in(client)
    # and the owner, from elsewhere, is locked out too until the cool-off ends
    other = Client(REMOTE_ADDR="203.0.113.9")
    assert (
        other.post(reverse("login"), {"username": buyer.email, "password": PASSWORD}).status_code
        == 429
    )


def test_the_lockout_counts_the_email_in_any_letter_case():
    BuyerFactory(email="li@brightway.example")
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        email = "LI@brightway.example" if n % 2 else "li@BRIGHTWAY.example"
        client.post(reverse("login"), {"username": email, "password": f"guess-{n}"})

    response = Client(REMOTE_ADDR="198.51.100.7").post(
        reverse("login"), {"username": "li@brightway.example", "password": PASSWORD}
    )

    assert response.status_code == 429


def test_a_few_typos_then_the_right_password_still_log_in():
    BuyerFactory(email="hana@harbour.example")
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(reverse("login"), {"username": "hana@harbour.example", "password": f"x{n}"})

    response = client.post(
        reverse("login"), {"username": "hana@harbour.example", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert logged_in(client)


def test_fifty_wrong_passwords_lock_the_admin_login_even_with_a_valid_code():
    # given a mediator (who moves money in the admin) with an enrolled authenticator
    mediator = MediatorFactory(email="maya@tradeassure.example")
    device = totp_device_enrol(user=mediator)
    client = Client()
    for n in range(50):
        client.post(
            reverse("admin:login"),
            {"username": mediator.email, "password": f"guess-{n}", "next": "/admin/"},
        )

    # when the right password and a right code come after them
    response = client.post(
        reverse("admin:login"),
        {
            "username": mediator.email,
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": totp_current_token(device),
            "next": "/admin/",
        },
    )

    # then the admin stays shut
    assert response.status_code == 429
    assert not logged_in(client)


# --- Second factor for staff -------------------------------------------------------------------


def test_the_admin_site_requires_a_verified_device_in_every_profile():
    assert isinstance(admin.site, OTPAdminSite)


@pytest.mark.parametrize("factory", [MediatorFactory, VettingFactory])
def test_staff_with_only_a_password_do_not_get_into_the_admin(factory):
    # given a staff member logged in by password alone
    staff = factory()
    client = Client()
    client.force_login(staff)

    # then the admin sends them to its log-in form, which asks for a code
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("admin:login") in response.url
    form = client.get(reverse("admin:login")).content.decode()
    assert 'name="otp_token"' in form

    # and once a code from their device is verified, they are in
    verify_staff_device(client, staff)
    assert client.get(reverse("admin:index")).status_code == 200


def test_admin_log_in_needs_the_right_code():
    mediator = MediatorFactory()
    device = totp_device_enrol(user=mediator)
    data = {
        "username": mediator.email,
        "password": PASSWORD,
        "otp_device": device.persistent_id,
        "next": "/admin/",
    }

    without_code = Client()
    assert without_code.post(reverse("admin:login"), data).status_code == 200
    assert not logged_in(without_code)

    wrong_code = Client()
    right = totp_current_token(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert wrong_code.post(reverse("admin:login"), {**data, "otp_token": wrong}).status_code == 200
    assert not logged_in(wrong_code)

    right_code = Client()
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    response = right_code.post(reverse("admin:login"), {**data, "otp_token": right})
    assert response.status_code == 302
    assert right_code.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert right_code.get(reverse("admin:index")).status_code == 200


def test_totp_device_command_enrols_a_user_and_prints_the_otpauth_uri():
    mediator = MediatorFactory(email="maya@tradeassure.example")
    out = io.StringIO()

    call_command("totp_device", "Maya@TradeAssure.example", stdout=out)

    device = TOTPDevice.objects.get(user=mediator)
    uri = out.getvalue().strip()
    assert uri == device.config_url
    assert uri.startswith("otpauth://totp/TradeAssure%3Amaya%40tradeassure.example?")
    assert "issuer=TradeAssure" in uri
    assert device.confirmed

    # a lost phone: --replace gives a new key
    call_command("totp_device", mediator.email, "--replace", stdout=io.StringIO())
    assert TOTPDevice.objects.get(user=mediator).key != device.key
    with pytest.raises(CommandError):
        call_command("totp_device", "nobody@example.com", stdout=io.StringIO())


def test_seed_demo_enrols_the_demo_staff_and_a_newcomer_gets_into_the_admin(settings):
    # given the demo data (as `make run` loads it)
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()

    # then each demo staff member has a device and its URI is printed, with how to get a code
    mediator_email = "mediator@demo.tradeassure.dev"
    device = TOTPDevice.objects.get(user__email=mediator_email)
    assert device.config_url in text
    assert "manage.py totp_code" in text

    # and the code that command prints logs the mediator into the admin
    settings.DEBUG = True
    code = io.StringIO()
    call_command("totp_code", mediator_email, stdout=code)
    from tradeassure.platform.demo import DEMO_PASSWORD

    client = Client()
    response = client.post(
        reverse("admin:login"),
        {
            "username": mediator_email,
            "password": DEMO_PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": code.getvalue().strip(),
            "next": "/admin/",
        },
    )
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200
    # seed_demo again does not re-key the devices the newcomer scanned
    call_command("seed_demo", stdout=io.StringIO())
    assert TOTPDevice.objects.get(user__email=mediator_email).key == device.key


def test_totp_code_refuses_outside_the_debug_profile(settings):
    totp_device_enrol(user=MediatorFactory(email="m@example.com"))
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("totp_code", "m@example.com", stdout=io.StringIO())


# --- Sign-up does not reveal who is registered ---------------------------------------------------


def test_sign_up_answers_the_same_way_whether_or_not_the_email_is_taken(client):
    from tests.test_accounts import sign_up_data

    BuyerFactory(email="taken@example.com")

    taken = Client().post(reverse("sign_up"), sign_up_data(email="taken@example.com"))

    # the answer carries no error and does not mention the account
    assert taken.status_code == 302
    page = Client().get(taken.url).content.decode()
    assert "exists" not in page and "already" not in page.lower()


# --- Content security policy ----------------------------------------------------------------------

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> block"),
    (re.compile(r"\sstyle=", re.I), "style= attribute"),
    (re.compile(r"\son[a-z]+=", re.I), "on…= handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_templates_and_admin_html_have_no_inline_script_or_style():
    sources = [*(BASE_DIR / "templates").rglob("*.html")]
    for app in ("accounts", "suppliers", "orders", "payments", "disputes", "tradeassure"):
        sources += [p for p in (BASE_DIR / app).rglob("*.py") if "migrations" not in p.parts]
    found = []
    for path in sources:
        text = path.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                if path.suffix == ".py" and what in {"on…= handler", "inline <script>"}:
                    continue  # Python has no HTML handlers; `<script` checks are for templates
                found.append(f"{path.relative_to(BASE_DIR)}: {what}: {match.group(0)!r}")
    assert found == []


def csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part
    }


@pytest.mark.parametrize("url_name", ["home", "login", "sign_up", "suppliers:directory"])
def test_every_page_carries_a_self_only_policy(client, url_name):
    policy = csp(client.get(reverse(url_name)))

    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]


def test_the_admin_carries_the_policy_too(client):
    client.force_login(MediatorFactory())
    policy = csp(client.get(reverse("admin:index")))
    assert "'unsafe-inline'" not in policy["script-src"] + policy["style-src"]


def test_only_redoc_relaxes_styles_and_swagger_needs_nothing_inline(client):
    swagger = client.get(reverse("api-docs"))
    assert csp(swagger)["style-src"] == ["'self'"]
    assert "<script>" not in swagger.content.decode()
    assert "<style>" not in swagger.content.decode()
    assert client.get(reverse("api-docs") + "?script").status_code == 200

    redoc = client.get(reverse("api-redoc"))
    assert csp(redoc)["style-src"] == ["'self'", "'unsafe-inline'"]
    assert csp(redoc)["script-src"] == ["'self'"]
    assert "fonts.googleapis.com" not in redoc.content.decode()


def test_a_view_adds_to_the_policy_with_csp_update(rf):
    # the composition another page (the card form and Stripe.js) relies on
    from csp.decorators import csp_update
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse

    @csp_update({"script-src": ["https://js.stripe.com"], "frame-src": ["https://js.stripe.com"]})
    def view(request):
        return HttpResponse("ok")

    request = rf.get("/")
    response = CSPMiddleware(view)(request)
    policy = csp(response)
    assert policy["script-src"] == ["'self'", "https://js.stripe.com"]
    assert policy["frame-src"] == ["https://js.stripe.com"]
    assert policy["style-src"] == ["'self'"]


def test_uploads_keep_their_own_stricter_policy():
    from django.http import HttpResponse

    from tradeassure.core import uploads

    assert "default-src 'none'; sandbox" in Path(uploads.__file__).read_text()
    response = HttpResponse()
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    from csp.middleware import CSPMiddleware

    processed = CSPMiddleware(lambda request: response)(Client().request().wsgi_request)
    assert processed["Content-Security-Policy"] == "default-src 'none'; sandbox"
