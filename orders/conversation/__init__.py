"""The order conversation: one append-only thread per order between the buyer organisation and
the supplier, with private attachments, per-organisation read receipts and staff moderation.

`models` (registered with the orders app), `services` (writes), `selectors` (reads), `views`
(the pages' post and download endpoints) and `serializers` (the API)."""
