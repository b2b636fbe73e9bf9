# Rendered by imagefactory from images/app/rag-api/image.yaml; edit that file, not this one.
# image: app/rag-api 0.3.0  content: sha256:9690f06bf72201522fdb95f6d2aaae95e38a01fc360f2a8965a240dd3abaed1b
FROM 127.0.0.1:5000/bank-ai-lab/dev/runtime/llm@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc

USER 0:0
SHELL ["/bin/bash", "-o", "pipefail", "-euc"]

RUN --mount=type=bind,source=ca-bundle.pem,target=/run/imagefactory/ca.pem \
    export PIP_CERT=/run/imagefactory/ca.pem && { test -x /opt/venv/bin/python || python3 -m venv /opt/venv; } \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
      fastapi==0.115.12 \
      uvicorn==0.34.3

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
      org.imagefactory.content-hash="sha256:9690f06bf72201522fdb95f6d2aaae95e38a01fc360f2a8965a240dd3abaed1b" \
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
