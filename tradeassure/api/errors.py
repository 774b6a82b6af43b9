"""problem+json for requests that reach no API view (unknown paths under /api/v1/)."""

from django.http import JsonResponse

from tradeassure.errors import PROBLEM_CONTENT_TYPE, problem


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    detail = "No API resource at this path. See /api/docs/."
    if not request.path.endswith("/"):
        detail = "No API resource at this path: API paths end with a slash. See /api/docs/."
    body = problem(
        status=404, code="not_found", title="Not found.", detail=detail, instance=request.path
    )
    return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)
