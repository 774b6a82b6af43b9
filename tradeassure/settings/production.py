"""Production profile: everything in the base settings, HTTPS-only, secrets required from the env.

Use with DJANGO_SETTINGS_MODULE=tradeassure.settings.production; `manage.py check --deploy`
reports nothing under it.
"""

import hashlib
import hmac
import os

os.environ.setdefault("DEBUG", "false")

from tradeassure.settings import *  # noqa: F403
from tradeassure.settings import env, secret

DEBUG = False
SECRET_KEY = secret("SECRET_KEY")  # no default: refuse to start without a real secret
# payments/checks.py refuses to start on the sandbox provider or a default secret.
TRADEASSURE_PRODUCTION = True
# Only for a demo or staging stack that moves no real money (docker-compose.yml sets it).
PAYMENTS_ALLOW_SANDBOX = env.bool("PAYMENTS_ALLOW_SANDBOX", default=False)
# Never the public default: if unset, one derived from SECRET_KEY (used only by the sandbox).
SANDBOX_WEBHOOK_SECRET = (
    secret("SANDBOX_WEBHOOK_SECRET", default="")
    or hmac.new(SECRET_KEY.encode(), b"tradeassure sandbox webhooks", hashlib.sha256).hexdigest()
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

# X-Forwarded-Proto is only as good as the proxy that sets it: trust it only when the app is
# reachable solely through a proxy that overwrites it (docker-compose.yml's Caddy does). With
# gunicorn published directly, any client could claim HTTPS.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("TRUST_X_FORWARDED_PROTO", default=False)
    else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# /healthz, /healthz/live and /healthz/ready are probed over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz(/live|/ready)?$"]
# Secure cookies are never sent back over plain HTTP: keep them on wherever the site is HTTPS;
# compose turns them off only while it serves plain HTTP (HTTPS=false).
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
# HSTS ramps up: a browser remembers it for max-age, so start at an hour, then a week, a month,
# a year (SECURE_HSTS_SECONDS) once HTTPS is known to hold everywhere; ask for preload last.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    # Preload is an opt-in that is slow to undo (the browsers' built-in list), not a default.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)  # noqa: F405
