"""Quality checked before shipment: the buyer books a third-party inspection of the goods from an
approved inspection company, pays its fee through the payments provider, the supplier proposes
dates, the inspector reports (conforms / does not conform, with files), and a report that does not
conform blocks shipment until the parties agree what next.

`models` (registered with the orders app), `transitions` (the explicit map), `services` (writes),
`holds` (the shipment block other order services lift), `selectors` (reads), `views` and `forms`
(the buyer's, supplier's and inspector's pages), `api` and `serializers`, `admin`, `demo`.
What it shares with the disputes' inspection (the verdict, the report rule, the fee rule, the
checked files, the fee settlement) lives in `tradeassure.core` and `payments`."""
