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


# Each demo buyer and supplier company is a team of three: its admin (the login above) plus one
# member per other role, logging in as <admin's name>-<role>@demo.tradeassure.dev.
DEMO_DOMAIN = "@demo.tradeassure.dev"
DEMO_TEAM_NAMES: dict[str, str] = {
    User.TeamRole.PURCHASING: "Priya Purchasing",
    User.TeamRole.SALES: "Sam Sales",
    User.TeamRole.FINANCE: "Fiona Finance",
}


def seed_demo_teams(users: dict[str, User]) -> dict[str, User]:
    """Give every demo buyer and supplier company its purchasing/sales and finance members
    (idempotent); returns them by login key (`<admin key>_<role>`), in company order."""
    added: dict[str, User] = {}
    admins = (
        User.objects.filter(
            email__endswith=DEMO_DOMAIN,
            is_api_service=False,
            team_role=User.TeamRole.ADMIN,
            organisation__kind__in=[Organisation.Kind.BUYER, Organisation.Kind.SUPPLIER],
        )
        .exclude(email__contains="-")
        .select_related("organisation")
        .order_by("organisation_id", "pk")
    )
    seen: set[int] = set()
    for admin in admins:
        organisation = admin.organisation
        if organisation is None or organisation.pk in seen:
            continue
        seen.add(organisation.pk)
        base = admin.email.removesuffix(DEMO_DOMAIN)
        for team_role in User.TEAM_ROLES_FOR_KIND[organisation.kind][1:]:
            email = f"{base}-{team_role}{DEMO_DOMAIN}"
            member = User.objects.filter(email=email).first()
            if member is None:
                member = User.objects.create_user(
                    email=email,
                    password=DEMO_PASSWORD,
                    full_name=f"{DEMO_TEAM_NAMES[team_role]} ({organisation.name})",
                    role=admin.role,
                    team_role=team_role,
                    organisation=organisation,
                    time_zone=admin.time_zone,
                )
            added[f"{base}_{team_role}"] = member
    return added
