# Rendered by imagefactory from images/runtime/llm/image.yaml; edit that file, not this one.
# image: runtime/llm:cpu 1.0.0  content: sha256:7c6c00929e4d0d18ba4d6f290cfab6ec516c5b23952a0078a7f5eecdd801ad22
FROM 127.0.0.1:5000/bank-ai-lab/dev/base/debian12@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb

USER 0:0
SHELL ["/bin/bash", "-o", "pipefail", "-euc"]

RUN --mount=type=bind,source=ca-bundle.pem,target=/run/imagefactory/ca.pem \
    apt-get update -o Acquire::https::CaInfo=/run/imagefactory/ca.pem \
 && apt-get install -y --no-install-recommends -o Acquire::https::CaInfo=/run/imagefactory/ca.pem \
      python3 \
      python3-venv \
      libgomp1 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/log/apt/* /var/log/dpkg.log

RUN --mount=type=bind,source=ca-bundle.pem,target=/run/imagefactory/ca.pem \
    export PIP_CERT=/run/imagefactory/ca.pem && { test -x /opt/venv/bin/python || python3 -m venv /opt/venv; } \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
      numpy==2.2.6 \
      tokenizers==0.21.1 \
      onnxruntime==1.22.0

ENV TZ="UTC" \
    LANG="C.UTF-8" \
    PATH="/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    PYTHONDONTWRITEBYTECODE="1" \
    PYTHONUNBUFFERED="1"

LABEL com.example-bank.accelerator="cpu" \
      com.example-bank.image.tier="runtime" \
      org.imagefactory.content-hash="sha256:7c6c00929e4d0d18ba4d6f290cfab6ec516c5b23952a0078a7f5eecdd801ad22" \
      org.imagefactory.ref="runtime/llm:cpu" \
      org.opencontainers.image.base.digest="sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" \
      org.opencontainers.image.base.name="base/debian12" \
      org.opencontainers.image.description="Python 3.11 runtime with ONNX Runtime and Hugging Face tokenizers for inference." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://gitlab.example-bank.internal/platform/imagefactory" \
      org.opencontainers.image.title="runtime/llm" \
      org.opencontainers.image.vendor="Example Bank - Data & AI Lab" \
      org.opencontainers.image.version="1.0.0"
USER 10001:10001
