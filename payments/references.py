"""Escrow references: payments' own naming of the escrow that holds an order's money.

The string format ("order:<id>") is private to payments; callers above it build and read
references only through these helpers."""

from dataclasses import dataclass

ORDER_KIND = "order"


def escrow_reference_for_order(order_id: int) -> str:
    """The reference of the escrow that holds this order's money."""
    return f"{ORDER_KIND}:{order_id}"


@dataclass(frozen=True)
class EscrowReference:
    """A parsed escrow reference: what kind of thing the escrow is for, and its id."""

    kind: str
    object_id: int | None

    @classmethod
    def parse(cls, reference: str) -> "EscrowReference":
        kind, _, rest = str(reference).partition(":")
        return cls(kind=kind, object_id=int(rest) if rest.isdigit() else None)

    @property
    def order_id(self) -> int | None:
        """The order this escrow belongs to, or None when it is not an order's escrow."""
        return self.object_id if self.kind == ORDER_KIND else None
