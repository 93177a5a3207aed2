FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ORCH_DATA_DIR=/data \
    ORCH_ROOM_TEMPLATES_DIR=/app/room_templates

WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY room_templates ./room_templates
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin orchestrator \
    && mkdir -p /data \
    && chown orchestrator /data

# Runs as an unprivileged user; /data (SQLite file, generated secrets, mail sink) is its own.
USER orchestrator
EXPOSE 8000

# No curl in the slim image: python asks /healthz (503 while the database is unreachable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["sh", "-c", "orchestrator db upgrade && exec orchestrator serve --host 0.0.0.0 --port 8000"]
