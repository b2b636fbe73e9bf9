# Rendered by imagefactory from images/app/rag-api-distroless/image.yaml; edit that file, not this one.
# image: app/rag-api-distroless 0.3.0  content: sha256:63f9fe56b2b5920c704b037415d7ecc078005d713d94517ed2f5263e5a63a7c4
FROM 127.0.0.1:5000/bank-ai-lab/dev/app/rag-api:content-6154e452cd50050ccb415d31

USER 0:0
SHELL ["/bin/bash", "-o", "pipefail", "-euc"]

ENV TZ="UTC" \
    LANG="C.UTF-8" \
    PATH="/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    PYTHONDONTWRITEBYTECODE="1" \
    PYTHONUNBUFFERED="1" \
    PYTHONPATH="/opt/rag-api" \
    RAG_API_PORT="8080"
WORKDIR /opt/rag-api
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
ENTRYPOINT ["python", "-m", "uvicorn", "rag_api.main:app", "--host", "0.0.0.0", "--port", "8080"]

LABEL com.example-bank.accelerator="cpu" \
      com.example-bank.image.tier="app" \
      org.imagefactory.content-hash="sha256:63f9fe56b2b5920c704b037415d7ecc078005d713d94517ed2f5263e5a63a7c4" \
      org.imagefactory.ref="app/rag-api-distroless" \
      org.opencontainers.image.base.digest="" \
      org.opencontainers.image.base.name="app/rag-api" \
      org.opencontainers.image.description="Retrieval API over the lab's policy documents, shell-less." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://gitlab.example-bank.internal/platform/imagefactory" \
      org.opencontainers.image.title="app/rag-api-distroless" \
      org.opencontainers.image.vendor="Example Bank - Data & AI Lab" \
      org.opencontainers.image.version="0.3.0"
USER 10001:10001

# Shell-less (distroless:): what the application needs at run time, laid out by the closure
# script, is all a scratch stage takes; it runs with the config the lineage gives the image.
# hadolint ignore=DL3002
USER 0:0
RUN --mount=type=bind,source=shell-less.sh,target=/run/imagefactory/shell-less.sh \
    bash /run/imagefactory/shell-less.sh --venv /opt/venv --path /opt/rag-api/rag_api --path /opt/rag-api --path /home/app --account app

FROM scratch
COPY --from=0 /imagefactory-final/ /

ENV TZ="UTC" \
    LANG="C.UTF-8" \
    PATH="/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    PYTHONDONTWRITEBYTECODE="1" \
    PYTHONUNBUFFERED="1" \
    PYTHONPATH="/opt/rag-api" \
    RAG_API_PORT="8080"
WORKDIR /opt/rag-api
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
ENTRYPOINT ["python", "-m", "uvicorn", "rag_api.main:app", "--host", "0.0.0.0", "--port", "8080"]

LABEL com.example-bank.accelerator="cpu" \
      com.example-bank.image.tier="app" \
      org.imagefactory.content-hash="sha256:63f9fe56b2b5920c704b037415d7ecc078005d713d94517ed2f5263e5a63a7c4" \
      org.imagefactory.ref="app/rag-api-distroless" \
      org.opencontainers.image.base.digest="" \
      org.opencontainers.image.base.name="app/rag-api" \
      org.opencontainers.image.description="Retrieval API over the lab's policy documents, shell-less." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://gitlab.example-bank.internal/platform/imagefactory" \
      org.opencontainers.image.title="app/rag-api-distroless" \
      org.opencontainers.image.vendor="Example Bank - Data & AI Lab" \
      org.opencontainers.image.version="0.3.0"
USER 10001:10001
