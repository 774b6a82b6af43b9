"""Demo suppliers: eligible and not, approved, pending, suspended — all made through the services.

Idempotent: a supplier whose organisation already has a Supplier row is left alone.
"""

import io
from datetime import timedelta
from decimal import Decimal

from django.core.files import File
from django.utils.text import slugify

from accounts.models import Organisation, User
from suppliers import services
from suppliers.models import Category, Supplier
from tradeassure.core import clock
from tradeassure.platform.demo import DEMO_PASSWORD

CATEGORIES = [
    "Consumer electronics",
    "Plastic moulding",
    "Home & kitchen",
    "Textiles",
    "Rubber products",
    "Hardware & fasteners",
    "Furniture",
    "Toys",
]

# A tiny, valid PDF for the demo verification documents.
DEMO_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)

# key, legal name, country, year, capacity, membership, categories, story, products
# story: "approved" | "pending_application" | "pending_verification" | "suspended" |
#        "verified_only" | "new"
# products: (name, category, unit price, currency, MOQ, unit, lead time days)
SUPPLIERS = [
    (
        "supplier",
        "Shenzhen Brightway Electronics Co.",
        "CN",
        2009,
        50000,
        "gold",
        ["Consumer electronics"],
        "approved",
        [
            ("USB-C fast charger 65W", "Consumer electronics", "4.80", "USD", 500, "pcs", 25),
            ("Bluetooth earbuds TW-20", "Consumer electronics", "7.35", "USD", 300, "pairs", 30),
            ("Power bank 10,000 mAh", "Consumer electronics", "6.10", "USD", 500, "pcs", 28),
        ],
    ),
    (
        "supplier2",
        "Penang Precision Moulding Sdn Bhd",
        "MY",
        2001,
        120000,
        "gold",
        ["Plastic moulding", "Home & kitchen"],
        "approved",
        [
            ("Injection-moulded housing (ABS)", "Plastic moulding", "0.42", "USD", 5000, "pcs", 35),
            ("Food-grade storage box 2 L", "Home & kitchen", "1.15", "USD", 2000, "pcs", 30),
        ],
    ),
    (
        "ningbo",
        "Ningbo Harbour Homeware Ltd",
        "CN",
        2012,
        30000,
        "gold",
        ["Home & kitchen"],
        "pending_application",
        [
            ("Stainless steel kettle 1.7 L", "Home & kitchen", "58.00", "CNY", 200, "pcs", 30),
            ("Bamboo cutting board set", "Home & kitchen", "21.50", "CNY", 300, "sets", 25),
        ],
    ),
    (
        "guangzhou",
        "Guangzhou Silk Road Textiles",
        "CN",
        2018,
        20000,
        "free",
        ["Textiles"],
        "pending_verification",
        [("Cotton T-shirt, 180 gsm", "Textiles", "2.20", "USD", 1000, "pcs", 20)],
    ),
    (
        "klrubber",
        "KL Rubber Works Sdn Bhd",
        "MY",
        1998,
        40000,
        "gold",
        ["Rubber products"],
        "suspended",
        [
            ("Nitrile gloves, box of 100", "Rubber products", "3.90", "USD", 1000, "boxes", 21),
            ("EPDM door seal, per metre", "Rubber products", "0.65", "USD", 5000, "m", 30),
        ],
    ),
    (
        "ohio",
        "Ohio Fastener Supply LLC",
        "US",
        1987,
        80000,
        "gold",
        ["Hardware & fasteners"],
        "verified_only",
        [("M8 hex bolt, zinc plated", "Hardware & fasteners", "0.09", "USD", 10000, "pcs", 10)],
    ),
    (
        "hanoi",
        "Hanoi Oak Furniture JSC",
        "VN",
        2015,
        1500,
        "free",
        ["Furniture"],
        "new",
        [("Solid oak dining chair", "Furniture", "48.00", "USD", 50, "pcs", 45)],
    ),
    (
        "dongguan",
        "Dongguan Happy Toys Factory",
        "CN",
        2010,
        60000,
        "expired",
        ["Toys"],
        "verified_only",
        [("Wooden building blocks, 100 pcs", "Toys", "31.00", "CNY", 500, "sets", 40)],
    ),
]


def _categories() -> dict[str, Category]:
    found = {}
    for name in CATEGORIES:
        category, _ = Category.objects.get_or_create(slug=slugify(name), defaults={"name": name})
        found[name] = category
    return found


def _staff_user(key: str, legal_name: str, country: str, users: dict[str, User]) -> User:
    if key in users:
        return users[key]
    organisation, _ = Organisation.objects.get_or_create(
        name=legal_name, defaults={"kind": Organisation.Kind.SUPPLIER, "country": country}
    )
    email = f"{key}@demo.tradeassure.dev"
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(
            email=email,
            password=DEMO_PASSWORD,
            full_name=f"{legal_name} sales",
            role=User.Role.SUPPLIER_STAFF,
            organisation=organisation,
        )
    return user


def _history(supplier: Supplier, key: str, *, count: int, late: bool) -> None:
    """Order facts as the orders app would report them, spread over the last months."""
    now = clock.now()
    for n in range(count):
        # Spread over the metrics window and all completed (and rated) before today.
        placed = now - timedelta(days=175 - n * 10)
        deadline = placed + timedelta(days=30)
        services.supplier_order_record_sync(
            supplier=supplier,
            order_reference=f"demo-history:{key}:{n}",
            amount=Decimal("4800.00") + Decimal(n * 250),
            currency="USD",
            status="completed",
            placed_at=placed,
            confirmed_at=placed + timedelta(hours=6 + n % 5 * 3),
            shipment_deadline=deadline,
            shipped_at=deadline + (timedelta(days=6) if late else -timedelta(days=3)),
            completed_at=deadline + timedelta(days=25),
            rating=(2 if late else 4 + n % 2),
        )


def seed(users: dict[str, User]) -> None:
    vetting = users["vetting"]
    categories = _categories()
    today = clock.now().date()
    for key, legal_name, country, year, capacity, tier, cats, story, products in SUPPLIERS:
        staff = _staff_user(key, legal_name, country, users)
        # Supplier staff always belong to an organisation (user_outside_staff_has_organisation).
        assert staff.organisation_id is not None
        if Supplier.objects.filter(organisation_id=staff.organisation_id).exists():
            continue
        supplier = services.supplier_profile_create(
            actor=staff,
            legal_name=legal_name,
            country=country,
            year_established=year,
            declared_capacity=capacity,
            description=f"{legal_name} makes {', '.join(cats).lower()} for export buyers.",
            categories=[categories[name] for name in cats],
        )
        for name, category, price, currency, moq, unit, lead in products:
            services.product_create(
                actor=staff,
                supplier=supplier,
                name=name,
                category=categories[category],
                unit_price=Decimal(price),
                currency=currency,
                minimum_order_quantity=moq,
                unit=unit,
                lead_time_days=lead,
                description=f"{name}. Samples available; OEM packaging on request.",
                specifications="Tolerances and test reports per the contract.",
            )
        if tier == "gold":
            services.supplier_membership_set(
                actor=vetting,
                supplier=supplier,
                membership="gold",
                expires_on=today + timedelta(days=300),
                reason="Gold membership purchased (demo).",
            )
        elif tier == "expired":
            services.supplier_membership_set(
                actor=vetting,
                supplier=supplier,
                membership="gold",
                expires_on=today - timedelta(days=20),
                reason="Gold membership purchased last year; not renewed (demo).",
            )
        if story == "new":
            continue
        services.verification_document_upload(
            actor=staff,
            supplier=supplier,
            kind="business_licence",
            file=File(io.BytesIO(DEMO_PDF), name="business-licence.pdf"),
        )
        if story == "pending_verification":
            continue
        services.supplier_verification_decide(
            actor=vetting,
            supplier=supplier,
            approve=True,
            reason="Business licence matches the company registry (demo).",
            verified_capacity=int(capacity * 0.8),
        )
        if story == "verified_only":
            continue
        if story in ("approved", "suspended"):
            _history(
                supplier, key, count=12 if story == "approved" else 6, late=story != "approved"
            )
        application = services.supplier_apply_for_trade_assurance(actor=staff, supplier=supplier)
        if story == "pending_application":
            continue
        services.supplier_application_decide(
            actor=vetting,
            application=application,
            approve=True,
            reason="Meets every rule; documents verified (demo).",
        )
        # The nightly recompute: healthy suppliers grow their limit; KL Rubber's late
        # shipments suspend it automatically.
        services.supplier_metrics_recompute(supplier=supplier)
    # The daily membership sweep, as it runs tonight: Dongguan's lapsed gold membership becomes
    # free tier now, not at the first 00:05 after `make run` (idempotent, like the rest).
    services.suppliers_sweep_memberships()
