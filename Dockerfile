# Tocsin production image: the same image runs web (daphne), worker (django-q2) and bootstrap.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TOCSIN_VAR_DIR=/var/lib/tocsin
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
CMD ["daphne", "--bind", "0.0.0.0", "--port", "8000", "--proxy-headers", "tocsin.asgi:application"]
