# One image for web (gunicorn), worker and beat; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=tradeassure.settings.production \
    TRADEASSURE_VAR_DIR=/data \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# Runtime dependencies first (cached while only the code changes), pinned by constraints.txt.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt

COPY . .
# collectstatic needs no real secret and no database: throwaway values at build time only.
RUN SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost python manage.py collectstatic --noinput \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin tradeassure \
    && mkdir -p /data/media /data/private \
    && chown -R tradeassure /data

USER tradeassure
EXPOSE 8000
VOLUME ["/data"]

# The code runs from /app (gunicorn and celery put the working directory on sys.path).
CMD ["gunicorn", "tradeassure.wsgi:application", "--bind=0.0.0.0:8000", "--workers=3", "--access-logfile=-", "--limit-request-line=0"]
