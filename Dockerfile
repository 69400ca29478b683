# Code location image for a Dagster cluster. The chart supplies the command
# (`dagster api grpc ...`), and run and step pods use the same image, so: no ENTRYPOINT.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/unified_ai
COPY pyproject.toml README.md ./
COPY unified_ai ./unified_ai
# Pinned Dagster family incl. dagster-postgres and dagster-k8s (run pods load the instance).
RUN pip install . \
 && python -c "import dagster_postgres, dagster_k8s, unified_ai.definitions" \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin unified \
 && mkdir -p "$DAGSTER_HOME" && chown -R unified "$DAGSTER_HOME"

USER 10001
EXPOSE 3030
