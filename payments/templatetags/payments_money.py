from django import template

from tradeassure.core.money import format_money

register = template.Library()


@register.filter
def money(amount, currency: str) -> str:
    """{{ amount|money:currency }} → "USD 1,234.50" (JPY without decimals)."""
    if amount is None or not currency:
        return ""
    return format_money(amount, currency)
