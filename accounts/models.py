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
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def is_buyer(self) -> bool:
        return self.role == self.Role.BUYER

    @property
    def is_supplier_staff(self) -> bool:
        return self.role == self.Role.SUPPLIER_STAFF

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
    """A secret an organisation gives its integration to call the API as one of its users.

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
        help_text="The member of the organisation the key acts as.",
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
