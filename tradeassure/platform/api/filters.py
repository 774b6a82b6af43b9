"""Query filters for the API that refuse what they cannot honour instead of ignoring it.

django-filter's own versions quietly drop a boolean they do not recognise (`?unread=maybe` lists
everything), round `?subject_id=1.5` down to 1, and pass an instant with a `+16:30` offset to
PostgreSQL, which cannot store it (a 500). These answer 400 for the first two and compare the
instant in UTC for the third.
"""

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


class StrictBooleanField(forms.Field):
    """`true`/`false` (or `1`/`0`, any case); empty means "no filter"; anything else is 400."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError("Must be true or false.", code="invalid")


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


@extend_schema_field(OpenApiTypes.INT)
class IntegerFilter(django_filters.NumberFilter):
    """An id or count: a whole number, never rounded."""

    field_class = forms.IntegerField


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        parsed = super().to_python(value)
        # Any offset Python parses (up to ±23:59) is the same instant in UTC.
        return parsed.astimezone(UTC) if parsed is not None else None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 instant with any offset, compared in UTC."""

    field_class = UtcIsoDateTimeField
