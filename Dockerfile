# Tocsin production image: the same image runs web (daphne), worker (django-q2) and bootstrap.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TOCSIN_VAR_DIR=/var/lib/tocsin TOCSIN_HOST=0.0.0.0 TOCSIN_PORT=8000
WORKDIR /app

# Backups run the databases' own dump and restore tools. pg_dump must be at least as new as
# the server (docker-compose runs PostgreSQL 16; Debian 12 ships 15): PostgreSQL's own apt
# repository (PGDG), set up as postgresql.org documents it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
    && install -d /usr/share/postgresql-common/pgdg \
    && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
        https://www.postgresql.org/media/keys/ACCC4CF8.asc \
    && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] \
https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-16 mariadb-client \
    && apt-get purge -y curl gnupg && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

RUN useradd --system --home /app --shell /usr/sbin/nologin tocsin \
    && mkdir -p /var/lib/tocsin /var/lib/tocsin-backups \
    && chown tocsin /var/lib/tocsin /var/lib/tocsin-backups

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
