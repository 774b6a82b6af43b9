"""The API's request parsers: DRF's, refusing what they would otherwise turn into a 500 or let
through silently.

- JSON nested too deeply for the parser (RecursionError) is a 400 `malformed_request`; JSON over
  `DATA_UPLOAD_MAX_MEMORY_SIZE` is a 413, on PATCH as on POST.
- A multipart file name with a folder part (`photos/report.pdf`, `..\\report.pdf`) keeps a
  trace of it, which the upload check refuses (`tradeassure.platform.multipart`).
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http.multipartparser import MultiPartParserError
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from tradeassure.platform.multipart import FolderKeepingMultiPartParser


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        # DRF reads the stream itself, past Django's body limit: hold JSON to the same limit
        # (RequestDataTooBig answers 413), whatever the method.
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request is not None and limit is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestDataTooBig(
                    "Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE."
                )
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        encoding = parsers.get_encoding(parser_context)
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            parser = FolderKeepingMultiPartParser(meta, stream, request.upload_handlers, encoding)
            data, files = parser.parse()
            return parsers.DataAndFiles(data, files)
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from exc
