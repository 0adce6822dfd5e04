# Tocsin production image: the same image runs web (daphne), worker (django-q2) and bootstrap.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TOCSIN_VAR_DIR=/var/lib/tocsin TOCSIN_HOST=0.0.0.0 TOCSIN_PORT=8000
WORKDIR /app

RUN useradd --system --home /app --shell /usr/sbin/nologin tocsin \
    && mkdir -p /var/lib/tocsin && chown tocsin /var/lib/tocsin

COPY pyproject.toml README.md ./
COPY tocsin ./tocsin
COPY monitoring ./monitoring
COPY incidents ./incidents
COPY probes ./probes
COPY backups ./backups
RUN pip install .

COPY manage.py ./
COPY templates ./templates
COPY static ./static
# Static files are collected at build time; the key below exists only for this step.
RUN SECRET_KEY=build-only DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput --verbosity 0 \
    && chown -R tocsin /var/lib/tocsin && rm -f /tmp/build.sqlite3

USER tocsin
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status != 200)"
# daphne through `manage.py web`: its access log redacts ingest keys and other credentials in
# paths, and it trusts X-Forwarded-For only with TOCSIN_BEHIND_PROXY=1 (docker-compose sets it,
# since nginx sets that header); run without a proxy, clients cannot forge their address.
CMD ["python", "manage.py", "web"]
