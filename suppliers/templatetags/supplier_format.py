from decimal import Decimal

from django import template

from tradeassure.core.money import format_money

register = template.Library()


@register.filter
def money(amount, currency: str = "USD") -> str:
    if amount is None or amount == "":
        return "—"
    return format_money(Decimal(amount), currency)


@register.filter
def percent(rate) -> str:
    if rate is None:
        return "—"
    return f"{Decimal(rate) * 100:.0f}%"


@register.filter
def stars(rating) -> str:
    if rating is None:
        return "—"
    full = int(Decimal(rating).to_integral_value())
    return "★" * full + "☆" * (5 - full)
