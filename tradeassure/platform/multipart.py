"""Multipart file names keep a trace of any folder part, so the upload check can refuse it.

Django's multipart parser drops everything up to the last `/` or `\\` of a file name
(`photos/report.pdf` arrives as `report.pdf`), so `tradeassure.core.uploads` could never see the
folder part the README promises to refuse. This parser hands such a name on with a backslash
in place of each separator (a backslash survives `UploadedFile`'s basename on POSIX), and the
upload check refuses it. The middleware makes every request (pages, and the API with a browser
session, whose CSRF check reads `request.POST` first) parse with it; the API's own multipart
parser (`tradeassure.platform.api.parsers`) uses it too.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.http.multipartparser import MultiPartParser
from django.utils.datastructures import ImmutableList


class FolderKeepingMultiPartParser(MultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str | None:
        sanitized = super().sanitize_file_name(file_name)
        if sanitized is None:
            return None
        if ("/" in file_name or "\\" in file_name) and sanitized != file_name:
            return file_name.replace("/", "\\")[-255:]
        return sanitized


class FolderKeepingMultipartMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        def parse_file_upload(META, post_data):
            # HttpRequest.parse_file_upload, with this module's parser.
            request.upload_handlers = ImmutableList(
                request.upload_handlers,
                warning="You cannot alter upload handlers after the upload has been processed.",
            )
            parser = FolderKeepingMultiPartParser(
                META, post_data, request.upload_handlers, request.encoding
            )
            return parser.parse()

        request.parse_file_upload = parse_file_upload  # type: ignore[method-assign]
        return self.get_response(request)
