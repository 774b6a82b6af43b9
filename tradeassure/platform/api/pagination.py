"""Cursor pagination: stable under inserts, so a partner polling a list never skips a row.

Each page carries the cursors themselves (`next_cursor`, `previous_cursor`) beside the full
`next`/`previous` links, so a generated client passes `cursor=` without parsing URLs. A
`page_size` that is not a whole number from 1 to `max_page_size` is a 400, not ignored.
"""

import re
from urllib.parse import parse_qs, urlsplit

from rest_framework import pagination
from rest_framework.response import Response

from tradeassure.core.errors import ValidationFailed

_WHOLE_NUMBER = re.compile(r"^[0-9]{1,6}$")


class CursorPagination(pagination.CursorPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-id"
    invalid_cursor_message = "The cursor is not valid: use the `next` or `previous` link as given."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        size = int(raw) if _WHOLE_NUMBER.match(raw) else 0
        if not 1 <= size <= self.max_page_size:
            message = f"A whole number from 1 to {self.max_page_size}."
            raise ValidationFailed(
                f"`page_size` must be a whole number from 1 to {self.max_page_size}.",
                fields={self.page_size_query_param: [message]},
            )
        return size

    def _cursor_of(self, link: str | None) -> str | None:
        if not link:
            return None
        values = parse_qs(urlsplit(link).query).get(self.cursor_query_param)
        return values[0] if values else None

    def get_paginated_response(self, data):
        next_link, previous_link = self.get_next_link(), self.get_previous_link()
        return Response(
            {
                "next": next_link,
                "previous": previous_link,
                "next_cursor": self._cursor_of(next_link),
                "previous_cursor": self._cursor_of(previous_link),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        response_schema = super().get_paginated_response_schema(schema)
        properties = response_schema["properties"]
        cursor = {
            "type": "string",
            "nullable": True,
            "description": "Pass as `cursor` to get the adjacent page; null at the end.",
        }
        ordered = {
            "next": properties["next"],
            "previous": properties["previous"],
            "next_cursor": {**cursor, "example": "cD0yMDI2LTAxLTAx"},
            "previous_cursor": cursor,
            "results": properties["results"],
        }
        response_schema["properties"] = ordered
        response_schema["required"] = [
            "next",
            "previous",
            "next_cursor",
            "previous_cursor",
            "results",
        ]
        return response_schema

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                    "default": self.page_size,
                }
        return parameters


class AscendingCursorPagination(CursorPagination):
    """Oldest first, for logs a partner reads forward (the events feed)."""

    ordering = "id"
