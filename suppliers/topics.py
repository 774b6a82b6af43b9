"""The domain event topics the suppliers app publishes (listed by `tradeassure.platform.catalogue`)."""

from enum import StrEnum


class SupplierTopic(StrEnum):
    CREATED = "supplier.created"
    # One per recorded status change (SupplierStatusChange.Field): `supplier.<field>_changed`.
    VERIFICATION_CHANGED = "supplier.verification_changed"
    TRADE_ASSURANCE_CHANGED = "supplier.trade_assurance_changed"
    LIMIT_CHANGED = "supplier.limit_changed"
    MEMBERSHIP_CHANGED = "supplier.membership_changed"
