"""The topics the platform itself sends (listed by `tradeassure.platform.catalogue`)."""

from enum import StrEnum


class PlatformTopic(StrEnum):
    # A test delivery from the Developers page or `POST /webhook-endpoints/{id}/test/`.
    WEBHOOK_TEST = "webhook.test"
