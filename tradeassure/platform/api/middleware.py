"""Every answer under /api/ is problem+json, whoever gives it.

DRF's views answer their own errors as problem+json (`errors.problem_exception_handler`), but
some answers come from Django before or around a view: the URL resolver's 404, the CSRF
middleware's 403, a 405 from a Django view, a 400 or 413 for a body Django refuses to read,
a 500 page. This middleware, outermost but for the security headers, turns any such HTML error
under /api/ into problem+json with the same status, and refuses an over-long query string
itself (414) so the answer never comes from the WSGI server's HTML page.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from tradeassure.platform.api.errors import PROBLEM_CONTENT_TYPE, problem_response

API_PREFIX = "/api/"


class ApiProblemMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        is_api = request.path_info.startswith(API_PREFIX)
        limit = settings.MAX_QUERY_STRING_LENGTH
        if len(request.META.get("QUERY_STRING", "")) > limit:
            detail = f"The query string is longer than {limit:,} characters."
            if is_api:
                return problem_response(status=414, detail=detail, instance=request.path)
            return HttpResponse(detail, status=414, content_type="text/plain; charset=utf-8")
        response = self.get_response(request)
        if not is_api or response.status_code < 400:
            return response
        content_type = response.get("Content-Type", "")
        data = getattr(response, "data", None)
        renderer = getattr(response, "accepted_renderer", None)
        if isinstance(data, dict) and "code" in data and getattr(renderer, "format", "") != "json":
            # A DRF problem rendered by a view's own renderer (the schema view's YAML).
            replacement = JsonResponse(
                data, status=response.status_code, content_type=PROBLEM_CONTENT_TYPE
            )
        elif content_type.startswith(PROBLEM_CONTENT_TYPE) or content_type.startswith(
            "application/json"
        ):
            return response
        else:
            replacement = problem_response(
                status=response.status_code,
                detail=_detail(response.status_code),
                instance=request.path,
            )
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replacement[header] = response[header]
        return replacement


def _detail(status: int) -> str:
    return {
        400: "The request could not be read.",
        403: "The request was refused.",
        404: "No API resource at this path. See /api/docs/.",
        405: "This method is not allowed at this path.",
        413: "The request body is too large.",
    }.get(status, "See the status code.")
