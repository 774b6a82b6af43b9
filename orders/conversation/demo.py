"""A short conversation on a few demo orders (called by `orders.demo.seed`).

Idempotent: an order that already has messages is left alone. Written through the service, so
notifications, read receipts and `order.message_posted` events are real."""

from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import User
from orders.conversation.models import OrderMessage
from orders.conversation.services import order_message_post
from orders.models import Order

# Purchase order number → (who speaks: "buyer" or "supplier", text, attach a PDF?)
CONVERSATIONS: dict[str, list[tuple[str, str, bool]]] = {
    "DEMO-O-pending": [
        ("buyer", "Hello! Can you confirm the chargers come with EU plugs and CE marking?", False),
        ("supplier", "Yes, EU plugs, CE and RoHS marked. Our certificate is attached.", True),
        ("buyer", "Thank you, that is what we need.", False),
    ],
    "DEMO-O-shipped": [
        ("supplier", "The power banks left our warehouse today; tracking is on the order.", False),
        ("buyer", "Great, we will confirm receipt as soon as they arrive.", False),
    ],
}
DEMO_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def seed() -> None:
    orders = Order.objects.select_related("supplier__organisation", "buyer").filter(
        purchase_order_number__in=list(CONVERSATIONS)
    )
    for order in orders:
        if OrderMessage.objects.filter(order=order).exists():
            continue
        staff = (
            User.objects.filter(
                organisation_id=order.supplier.organisation_id,
                role=User.Role.SUPPLIER_STAFF,
                is_active=True,
            )
            .order_by("id")
            .first()
        )
        if staff is None:
            continue
        for side, text, attach in CONVERSATIONS[order.purchase_order_number]:
            files = (
                [SimpleUploadedFile("certificate.pdf", DEMO_PDF, "application/pdf")]
                if attach
                else []
            )
            order_message_post(
                order=order,
                actor=order.buyer if side == "buyer" else staff,
                body=text,
                files=files,
            )
