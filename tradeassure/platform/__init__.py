"""The platform app: what every app publishes through (events, notifications, outbox, webhooks),
the partner API's shared infrastructure, the developers page and health.

Its app label stays "tradeassure", so tables, migrations, content types and permissions are the
ones it always had. It may import accounts and tradeassure.core, never an app above it.
"""
