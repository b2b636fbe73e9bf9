# Rendered by imagefactory from images/app/rag-api/image.yaml; edit that file, not this one.
# image: app/rag-api 0.3.0  content: sha256:6154e452cd50050ccb415d31e844030f75a11591ef374d8f2ef7b50d76702b0d
FROM 127.0.0.1:5000/bank-ai-lab/dev/runtime/llm@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc

USER 0:0
SHELL ["/bin/bash", "-o", "pipefail", "-euc"]

RUN --mount=type=bind,source=ca-bundle.pem,target=/run/imagefactory/ca.pem \
    --mount=type=bind,source=requirements.lock,target=/run/imagefactory/requirements.lock \
    export PIP_CERT=/run/imagefactory/ca.pem && { test -x /opt/venv/bin/python || python3 -m venv /opt/venv; } \
 && arch="$(dpkg --print-architecture)" locked=amd64 && if [ "$arch" != "$locked" ]; then \
      echo "image.lock was resolved for $locked; this build is for $arch: run" imagefactory lock app/rag-api "on $arch" >&2; exit 1; \
    fi \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
      --require-hashes --no-deps -r /run/imagefactory/requirements.lock

COPY --chown=root:root files/0/rag_api /opt/rag-api/rag_api
RUN find /opt/rag-api/rag_api -type f -exec chmod 0644 {} + && find /opt/rag-api/rag_api -type d -exec chmod 0755 {} +

ENV TZ="UTC" \
    LANG="C.UTF-8" \
    PYTHONPATH="/opt/rag-api" \
    RAG_API_PORT="8080"
WORKDIR /opt/rag-api
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
ENTRYPOINT ["python", "-m", "uvicorn", "rag_api.main:app", "--host", "0.0.0.0", "--port", "8080"]

LABEL com.example-bank.image.tier="app" \
      org.imagefactory.content-hash="sha256:6154e452cd50050ccb415d31e844030f75a11591ef374d8f2ef7b50d76702b0d" \
      org.imagefactory.ref="app/rag-api" \
      org.opencontainers.image.base.digest="sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" \
      org.opencontainers.image.base.name="runtime/llm" \
      org.opencontainers.image.description="Retrieval API over the lab's policy documents, with a health endpoint." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://gitlab.example-bank.internal/platform/imagefactory" \
      org.opencontainers.image.title="app/rag-api" \
      org.opencontainers.image.vendor="Example Bank - Data & AI Lab" \
      org.opencontainers.image.version="0.3.0"
USER 10001:10001
