"""Queries per request: one request of each scenario through Django's test client.

Run in-process for the product, and as `python -m bench.querycount` (requests as JSON on stdin)
under the floor's settings, so each app is counted under its own settings.
"""

from __future__ import annotations

import json
import sys


def count(requests: list[dict]) -> dict[str, int | None]:
    """{name: queries} for requests {name, method, path, headers, body}; None if not 2xx."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    counts: dict[str, int | None] = {}
    for request in requests:
        extra = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in request.get("headers", {}).items()
            if name.lower() != "cookie"
        }
        cookie = request.get("headers", {}).get("Cookie")
        if cookie:
            name, _, value = cookie.partition("=")
            client.cookies[name] = value
        with CaptureQueriesContext(connection) as captured:
            if request.get("body") is not None:
                response = client.post(
                    request["path"], request["body"], content_type="application/json", **extra
                )
            else:
                response = client.get(request["path"], **extra)
        counts[request["name"]] = len(captured) if response.status_code < 400 else None
    return counts


if __name__ == "__main__":
    import django

    django.setup()
    print(json.dumps(count(json.load(sys.stdin))))
