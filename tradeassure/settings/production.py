"""Production profile: everything in the base settings, HTTPS-only, secrets required from the env.

Use with DJANGO_SETTINGS_MODULE=tradeassure.settings.production; `manage.py check --deploy`
reports nothing under it.
"""

import hashlib
import hmac
import os

os.environ.setdefault("DEBUG", "false")

from tradeassure.settings import *  # noqa: F403
from tradeassure.settings import env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")  # no default: refuse to start without a real secret
# payments/checks.py refuses to start on the sandbox provider or a default secret.
TRADEASSURE_PRODUCTION = True
# Only for a demo or staging stack that moves no real money (docker-compose.yml sets it).
PAYMENTS_ALLOW_SANDBOX = env.bool("PAYMENTS_ALLOW_SANDBOX", default=False)
# Never the public default: if unset, one derived from SECRET_KEY (used only by the sandbox).
SANDBOX_WEBHOOK_SECRET = (
    env.str("SANDBOX_WEBHOOK_SECRET", default="")
    or hmac.new(SECRET_KEY.encode(), b"tradeassure sandbox webhooks", hashlib.sha256).hexdigest()
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# /healthz is probed over plain HTTP by the orchestrator inside the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)  # noqa: F405
