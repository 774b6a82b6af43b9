"""Identity: users log in by email and act for one organisation, in one role."""

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models

from tradeassure.core.moments import DEFAULT_TIME_ZONE, is_time_zone


def validate_time_zone(value: str) -> None:
    if not is_time_zone(value):
        raise ValidationError("Choose a time zone from the list (e.g. Europe/Paris).")


class Organisation(models.Model):
    """A company on the platform: who buys, who supplies, who inspects, or who integrates."""

    class Kind(models.TextChoices):
        BUYER = "buyer", "Buyer company"
        SUPPLIER = "supplier", "Supplier company"
        INSPECTION = "inspection", "Inspection company"
        PARTNER = "partner", "Partner (API integrator)"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2 code")
    # Inspection companies only: vetting staff approved it to inspect for Trade Assurance. Only
    # approved companies are offered to buyers (pre-shipment) and mediators (disputes).
    inspection_approved = models.BooleanField(
        "approved inspection company",
        default=False,
        help_text="Inspection companies only: offered to buyers and mediators.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["kind"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(inspection_approved=False) | models.Q(kind="inspection"),
                name="organisation_only_inspection_companies_approved",
            )
        ]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str | None) -> "User":
        """Log-in by email ignores case everywhere (site and admin): addresses are stored lower-case."""
        return self.get(**{f"{self.model.USERNAME_FIELD}__iexact": username})

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("role", User.Role.MEDIATOR)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    class Role(models.TextChoices):
        BUYER = "buyer", "Buyer"
        SUPPLIER_STAFF = "supplier_staff", "Supplier staff"
        MEDIATOR = "mediator", "Mediator"
        VETTING = "vetting", "Vetting staff"
        INSPECTOR = "inspector", "Inspector"
        PARTNER = "partner", "Partner developer"

    # The organisation kind each role belongs to; staff roles belong to none. Keyed by str: the
    # role column holds plain strings, and a Role member is equal to (and hashes as) its value.
    ORGANISATION_KIND_FOR_ROLE: ClassVar[dict[str, Organisation.Kind]] = {
        Role.BUYER: Organisation.Kind.BUYER,
        Role.SUPPLIER_STAFF: Organisation.Kind.SUPPLIER,
        Role.INSPECTOR: Organisation.Kind.INSPECTION,
        Role.PARTNER: Organisation.Kind.PARTNER,
    }
    STAFF_ROLES = {Role.MEDIATOR, Role.VETTING}

    class TeamRole(models.TextChoices):
        """A member's job inside their organisation (what each may do: `accounts.team`)."""

        ADMIN = "admin", "Admin"
        PURCHASING = "purchasing", "Purchasing"
        SALES = "sales", "Sales"
        FINANCE = "finance", "Finance"

    # The team roles each organisation kind offers; inspection and partner organisations have
    # admins only. Staff (no organisation) keep the default, which no check reads.
    TEAM_ROLES_FOR_KIND: ClassVar[dict[str, tuple[str, ...]]] = {
        Organisation.Kind.BUYER: (TeamRole.ADMIN, TeamRole.PURCHASING, TeamRole.FINANCE),
        Organisation.Kind.SUPPLIER: (TeamRole.ADMIN, TeamRole.SALES, TeamRole.FINANCE),
        Organisation.Kind.INSPECTION: (TeamRole.ADMIN,),
        Organisation.Kind.PARTNER: (TeamRole.ADMIN,),
    }

    # Removing the inherited field is Django's documented way to log in by email; the stubs
    # declare AbstractUser.username a CharField and cannot express a removed one.
    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices)
    time_zone = models.CharField(
        max_length=64,
        default=DEFAULT_TIME_ZONE,
        validators=[validate_time_zone],
        help_text="IANA zone (e.g. Europe/Paris) the user reads times in, on pages and in emails.",
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="members"
    )
    team_role = models.CharField(
        max_length=20,
        choices=TeamRole.choices,
        default=TeamRole.ADMIN,
        help_text="What this member may do for the organisation (the README's role table).",
    )
    is_api_service = models.BooleanField(
        default=False,
        help_text=(
            "The member an API key acts through: never logs in (no usable password), not listed "
            "as a member, never notified."
        ),
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    # An email-keyed manager; the stubs type AbstractUser.objects as Django's username-keyed
    # UserManager, whose create_user signature this one deliberately does not share.
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    class Meta:
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["mediator", "vetting"])
                | models.Q(organisation__isnull=False),
                name="user_outside_staff_has_organisation",
            ),
            # Purchasing is a buyer's job, sales a supplier's.
            models.CheckConstraint(
                condition=~models.Q(team_role="purchasing") | models.Q(role="buyer"),
                name="user_purchasing_only_buyer",
                violation_error_message="Purchasing is a role of buyer companies only.",
            ),
            models.CheckConstraint(
                condition=~models.Q(team_role="sales") | models.Q(role="supplier_staff"),
                name="user_sales_only_supplier",
                violation_error_message="Sales is a role of supplier companies only.",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "team_role"])]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def is_buyer(self) -> bool:
        return self.role == self.Role.BUYER

    @property
    def is_supplier_staff(self) -> bool:
        return self.role == self.Role.SUPPLIER_STAFF

    @property
    def is_team_admin(self) -> bool:
        return self.organisation_id is not None and self.team_role == self.TeamRole.ADMIN

    @property
    def is_mediator(self) -> bool:
        return self.role == self.Role.MEDIATOR or self.is_superuser

    @property
    def is_vetting(self) -> bool:
        return self.role == self.Role.VETTING or self.is_superuser

    @property
    def is_inspector(self) -> bool:
        return self.role == self.Role.INSPECTOR


# --- Partner API keys (owner: API helper) ------------------------------------------------------
class ApiKey(models.Model):
    """A secret an organisation gives its integration to call the API with one team role.

    The key acts through its own service member of the organisation (`user`, with
    `is_api_service`, the key's team role and no usable password), so every request.user-based
    rule applies to it unchanged and it keeps working when the person who created it leaves.

    Only a SHA-256 digest of the secret is stored (the secret is random and long, so a fast hash
    is enough); the full key is shown once, at creation. The visible prefix lets people tell
    keys apart and lets authentication find the row without scanning.
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="api_keys"
    )
    user = models.ForeignKey(
        User,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="The key's own service member of the organisation, holding the key's role.",
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_secret = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["organisation", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def team_role(self) -> str:
        return self.user.team_role


class Invitation(models.Model):
    """An admin's invitation of a colleague by email, with the role they will hold.

    The link carries a random token; only its SHA-256 digest is stored. Single use: accepting
    sets `accepted_at` (under a row lock), revoking sets `revoked_at`; it expires at `expires_at`.
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    team_role = models.CharField(max_length=20, choices=User.TeamRole.choices)
    hashed_token = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_user = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "created_at"]),
            models.Index(fields=["invited_by", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.email} as {self.get_team_role_display()}"


class TeamEvent(models.Model):
    """Who invited, changed or removed whom in an organisation (append-only)."""

    class Kind(models.TextChoices):
        INVITED = "invited", "Invited"
        INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
        JOINED = "joined", "Joined"
        ROLE_CHANGED = "role_changed", "Role changed"
        REMOVED = "removed", "Removed"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="team_events"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    member = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="team_history"
    )
    email = models.EmailField(blank=True, help_text="The address invited (or the member's).")
    from_role = models.CharField(max_length=20, blank=True)
    to_role = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organisation", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.email}"
