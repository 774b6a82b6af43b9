"""The web container's healthcheck: GET a health URL with a Host header ALLOWED_HOSTS accepts.

Django answers 400 to a Host it does not allow, so a probe of http://127.0.0.1:8000/ fails as
soon as ALLOWED_HOSTS is the real domain. This reads ALLOWED_HOSTS the way the settings do and
sends its first concrete name. It imports nothing from the project: it runs every 15 seconds.

    python deploy/healthcheck.py [URL]      (default http://127.0.0.1:8000/healthz/live)
"""

import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/healthz/live"


def probe_host(allowed_hosts: str) -> str:
    """The first ALLOWED_HOSTS entry as a host name ("*" and ".example.com" patterns included)."""
    for entry in allowed_hosts.split(","):
        host = entry.strip().lstrip("*").lstrip(".")
        if host:
            return host
    return "localhost"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect (say, to HTTPS) means the probe was not answered: report it, do not follow."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    host = probe_host(os.environ.get("ALLOWED_HOSTS", ""))
    request = urllib.request.Request(url, headers={"Host": host})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} (Host: {host}) answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
