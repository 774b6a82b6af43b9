"""The domain event topics the orders app publishes (listed by `tradeassure.platform.catalogue`).

A move publishes `order.<action>` unless its service names a topic of its own; both kinds are
listed, so a test can check that every action of `orders.transitions` has its topic here.
"""

from enum import StrEnum


class OrderTopic(StrEnum):
    # One per action of the transition map (orders.transitions.TRANSITIONS): `order.<action>`.
    ACCEPT_CHANGES = "order.accept_changes"
    ACCEPT_GOODS = "order.accept_goods"
    AUTO_CONFIRM_RECEIPT = "order.auto_confirm_receipt"
    BALANCE_PAYMENT_CAPTURED = "order.balance_payment_captured"
    CANCEL = "order.cancel"
    CANCEL_AFTER_FAILED_INSPECTION = "order.cancel_after_failed_inspection"
    CANCEL_LATE_WITH_REFUND = "order.cancel_late_with_refund"
    COMPLETE_AFTER_WINDOW = "order.complete_after_window"
    CONFIRM = "order.confirm"
    CONFIRM_RECEIPT = "order.confirm_receipt"
    CONTRACT_AMENDED_BY_DISPUTE = "order.contract_amended_by_dispute"
    DECLINE_CHANGES = "order.decline_changes"
    DISPUTE_OPENED = "order.dispute_opened"
    DISPUTE_RESOLVED_COMPLETE = "order.dispute_resolved_complete"
    DISPUTE_RESOLVED_REFUND = "order.dispute_resolved_refund"
    DISPUTE_RESOLVED_REPLACEMENT = "order.dispute_resolved_replacement"
    DISPUTE_RESOLVED_RESUME = "order.dispute_resolved_resume"
    EXPIRE_CONFIRMATION = "order.expire_confirmation"
    EXPIRE_PAYMENT = "order.expire_payment"
    EXTEND_RECEIPT_WINDOW = "order.extend_receipt_window"
    EXTEND_SHIPMENT_DEADLINE = "order.extend_shipment_deadline"
    FLAG_LATE = "order.flag_late"
    INITIAL_PAYMENT_CAPTURED = "order.initial_payment_captured"
    MARK_READY = "order.mark_ready"
    PLACE = "order.place"
    PROPOSE_CHANGES = "order.propose_changes"
    RATE = "order.rate"
    REQUEST_BALANCE = "order.request_balance"
    SHIP = "order.ship"
    WITHDRAW_CHANGES = "order.withdraw_changes"
    # Named topics some services publish for their move instead of `order.<action>`.
    BALANCE_REQUESTED = "order.balance_requested"
    CANCELLED = "order.cancelled"
    CHANGES_ACCEPTED = "order.changes_accepted"
    CHANGES_PROPOSED = "order.changes_proposed"
    COMPLETED = "order.completed"
    CONFIRMED = "order.confirmed"
    CONTRACT_AMENDED = "order.contract_amended"
    DELIVERED = "order.delivered"
    DISPUTE_RESOLVED = "order.dispute_resolved"
    DISPUTED = "order.disputed"
    MESSAGE_POSTED = "order.message_posted"  # the order conversation (not a status move)
    # The pre-shipment inspection (orders.inspection; its own moves, not the order's).
    INSPECTION_BOOKED = "order.inspection_booked"
    INSPECTION_CANCELLED = "order.inspection_cancelled"
    INSPECTION_DATES_PROPOSED = "order.inspection_dates_proposed"
    INSPECTION_FEE_PAID = "order.inspection_fee_paid"
    INSPECTION_REPORTED = "order.inspection_reported"
    INSPECTION_RESOLVED = "order.inspection_resolved"
    PLACED = "order.placed"
    RATED = "order.rated"
    READY_TO_SHIP = "order.ready_to_ship"
    RECEIPT_WINDOW_EXTENDED = "order.receipt_window_extended"
    REFUNDED = "order.refunded"
    SHIPMENT_DEADLINE_EXTENDED = "order.shipment_deadline_extended"
    SHIPMENT_LATE = "order.shipment_late"
    SHIPPED = "order.shipped"
