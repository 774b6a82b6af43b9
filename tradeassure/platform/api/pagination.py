"""Cursor pagination: stable under inserts, so a partner polling a list never skips a row."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-id"
    invalid_cursor_message = "The cursor is not valid: use the `next` or `previous` link as given."


class AscendingCursorPagination(CursorPagination):
    """Oldest first, for logs a partner reads forward (the events feed)."""

    ordering = "id"
