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
# Pinned Dagster family incl. dagster-postgres and dagster-k8s (run pods load the instance),
# plus the object store the Helm values name for UNIFIED_AI_HOME (s3://: s3fs for the lineage
# store and inboxes, boto3 for the MLflow artifacts the code location writes there; use
# [gcs] or [azure] for gs:// or az://). A current pip resolves s3fs's narrow botocore pin
# against boto3; older ones give up. unified_ai_tests/deploy/test_image_install.py installs
# the wheel with exactly these lines.
RUN pip install --upgrade "pip>=25" \
 && pip install ".[s3]" \
 && python -c "import dagster_postgres, dagster_k8s, s3fs, boto3, unified_ai.definitions" \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin unified \
 && mkdir -p "$DAGSTER_HOME" && chown -R unified "$DAGSTER_HOME"

USER 10001
EXPOSE 3030
