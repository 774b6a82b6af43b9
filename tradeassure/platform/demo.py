"""Demo users, one (or more) per role, shared by every app's demo data."""

from accounts.models import Organisation, User

DEMO_PASSWORD = "demo-pass-2026"

DEMO_USERS = [
    # key, email, name, role, organisation (name, kind, country) or None
    (
        "buyer",
        "buyer@demo.tradeassure.dev",
        "Bea Buyer",
        "buyer",
        ("Acme Retail Ltd", "buyer", "GB"),
    ),
    (
        "buyer2",
        "buyer2@demo.tradeassure.dev",
        "Ben Byrne",
        "buyer",
        ("Northwind Imports", "buyer", "US"),
    ),
    (
        "supplier",
        "supplier@demo.tradeassure.dev",
        "Li Wei",
        "supplier_staff",
        ("Shenzhen Brightway Electronics Co.", "supplier", "CN"),
    ),
    (
        "supplier2",
        "supplier2@demo.tradeassure.dev",
        "Aisha Rahman",
        "supplier_staff",
        ("Penang Precision Moulding Sdn Bhd", "supplier", "MY"),
    ),
    ("mediator", "mediator@demo.tradeassure.dev", "Maya Mediator", "mediator", None),
    ("vetting", "vetting@demo.tradeassure.dev", "Victor Vetting", "vetting", None),
    (
        "inspector",
        "inspector@demo.tradeassure.dev",
        "Ian Inspector",
        "inspector",
        ("QualiCheck Inspections", "inspection", "HK"),
    ),
    (
        "partner",
        "partner@demo.tradeassure.dev",
        "Pat Partner",
        "partner",
        ("ShopSync API", "partner", "DE"),
    ),
]


def seed_demo_users() -> dict[str, User]:
    from django.contrib.auth.models import Group

    from accounts.roles import GROUP_FOR_ROLE

    users: dict[str, User] = {}
    for key, email, name, role, org in DEMO_USERS:
        organisation = None
        if org:
            organisation, _ = Organisation.objects.get_or_create(
                name=org[0],
                defaults={
                    "kind": org[1],
                    "country": org[2],
                    "inspection_approved": org[1] == Organisation.Kind.INSPECTION,
                },
            )
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email,
                password=DEMO_PASSWORD,
                full_name=name,
                role=role,
                organisation=organisation,
                is_staff=role in User.STAFF_ROLES,
            )
        if role in GROUP_FOR_ROLE:
            user.groups.add(Group.objects.get(name=GROUP_FOR_ROLE[role]))
        users[key] = user
    return users
