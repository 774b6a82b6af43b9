"""Every error code and event topic of the installed apps, for the schema, the API and tests.

Each app declares its own as a `StrEnum` on its AppConfig (`error_codes`, `event_topics`); the
kernel's `CommonErrorCode` is always in. Listed through `django.apps`, so the platform names no
app. The app registry does not change at run time, so each list is computed once.
"""

from enum import StrEnum
from functools import cache

from tradeassure.core.app_hooks import declared_enums
from tradeassure.core.error_codes import CommonErrorCode


def error_code_enums() -> list[type[StrEnum]]:
    """`CommonErrorCode` first, then each installed app's declared error codes."""
    return [CommonErrorCode, *declared_enums("error_codes")]


@cache
def error_codes() -> tuple[str, ...]:
    """Every `code` a problem+json response may carry, sorted."""
    return tuple(sorted({str(code) for enum in error_code_enums() for code in enum}))


def topic_enums() -> list[type[StrEnum]]:
    """Each installed app's declared event topics."""
    return declared_enums("event_topics")


@cache
def event_topics() -> tuple[str, ...]:
    """Every topic an event (or a test delivery) may carry, sorted."""
    return tuple(sorted({str(topic) for enum in topic_enums() for topic in enum}))


@cache
def _event_topic_set() -> frozenset[str]:
    return frozenset(event_topics())


def is_event_topic(topic: str) -> bool:
    return topic in _event_topic_set()


@cache
def topic_patterns() -> tuple[str, ...]:
    """`<prefix>.*` for every dotted prefix of a known topic (`order.*`, …), sorted.

    A webhook endpoint may subscribe to these as well as to exact topics (`topic_matches`).
    """
    prefixes = {
        ".".join(parts[:length])
        for parts in (topic.split(".") for topic in event_topics())
        for length in range(1, len(parts))
    }
    return tuple(sorted(f"{prefix}.*" for prefix in prefixes))


@cache
def topic_subscriptions() -> tuple[str, ...]:
    """What a webhook endpoint may list in `topics`: exact topics and wildcard patterns, sorted."""
    return tuple(sorted({*event_topics(), *topic_patterns()}))
