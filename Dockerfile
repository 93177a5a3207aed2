FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ORCH_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY room_templates ./room_templates
RUN pip install --no-cache-dir . && useradd --system --home /data orchestrator \
    && mkdir -p /data && chown orchestrator /data
USER orchestrator
EXPOSE 8000
CMD ["sh", "-c", "orchestrator db upgrade && orchestrator serve --host 0.0.0.0 --port 8000"]
