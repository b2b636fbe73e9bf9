# Rendered by imagefactory from images/runtime/llm/image.yaml; edit that file, not this one.
# image: runtime/llm:cuda 1.0.0  content: sha256:09880f6937cbb6ad2b464dcf5d4b1ac7970c4381dad17ff456159498bf2ed102
FROM 127.0.0.1:5000/bank-ai-lab/dev/base/debian12@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb

USER 0:0
SHELL ["/bin/bash", "-o", "pipefail", "-euc"]

RUN --mount=type=bind,source=ca-bundle.pem,target=/run/imagefactory/ca.pem \
    apt-get update -o Acquire::https::CaInfo=/run/imagefactory/ca.pem \
 && arch="$(dpkg --print-architecture)" locked=amd64 && if [ "$arch" != "$locked" ]; then \
      echo "image.lock was resolved for $locked; this build is for $arch: run" imagefactory lock runtime/llm:cuda "on $arch" >&2; exit 1; \
    fi \
 && set -- \
      libcom-err2=1.47.0-2+b2 \
      libexpat1=2.5.0-1+deb12u5 \
      libgomp1=12.2.0-14+deb12u1 \
      libgssapi-krb5-2=1.20.1-2+deb12u5 \
      libk5crypto3=1.20.1-2+deb12u5 \
      libkeyutils1=1.6.3-2 \
      libkrb5-3=1.20.1-2+deb12u5 \
      libkrb5support0=1.20.1-2+deb12u5 \
      libncursesw6=6.4-4 \
      libnsl2=1.3.0-2 \
      libpython3-stdlib=3.11.2-1+b1 \
      libpython3.11-minimal=3.11.2-6+deb12u9 \
      libpython3.11-stdlib=3.11.2-6+deb12u9 \
      libreadline8=8.2-1.3 \
      libsqlite3-0=3.40.1-2+deb12u2 \
      libtirpc-common=1.3.3+ds-1 \
      libtirpc3=1.3.3+ds-1 \
      media-types=10.0.0 \
      python3=3.11.2-1+b1 \
      python3-distutils=3.11.2-3 \
      python3-lib2to3=3.11.2-3 \
      python3-minimal=3.11.2-1+b1 \
      python3-pip-whl=23.0.1+dfsg-1 \
      python3-setuptools-whl=66.1.1-1+deb12u2 \
      python3-venv=3.11.2-1+b1 \
      python3.11=3.11.2-6+deb12u9 \
      python3.11-minimal=3.11.2-6+deb12u9 \
      python3.11-venv=3.11.2-6+deb12u9 \
      readline-common=8.2-1.3 \
 && for pin; do \
      [ -n "$(apt-cache show "$pin" 2>/dev/null)" ] || { \
        echo "image.lock pins ${pin%%=*} ${pin#*=}, which the mirror no longer has: run" imagefactory lock runtime/llm:cuda "to lock again, or point build.mirrors at a snapshot.debian.org state" >&2; exit 1; }; \
    done \
 && apt-get install -y --no-install-recommends -o Acquire::https::CaInfo=/run/imagefactory/ca.pem "$@" \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/log/apt/* /var/log/dpkg.log

RUN --mount=type=bind,source=ca-bundle.pem,target=/run/imagefactory/ca.pem \
    --mount=type=bind,source=requirements.lock,target=/run/imagefactory/requirements.lock \
    export PIP_CERT=/run/imagefactory/ca.pem && { test -x /opt/venv/bin/python || python3 -m venv /opt/venv; } \
 && arch="$(dpkg --print-architecture)" locked=amd64 && if [ "$arch" != "$locked" ]; then \
      echo "image.lock was resolved for $locked; this build is for $arch: run" imagefactory lock runtime/llm:cuda "on $arch" >&2; exit 1; \
    fi \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
      --require-hashes --no-deps -r /run/imagefactory/requirements.lock

ENV TZ="UTC" \
    LANG="C.UTF-8" \
    PATH="/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    PYTHONDONTWRITEBYTECODE="1" \
    PYTHONUNBUFFERED="1" \
    NVIDIA_VISIBLE_DEVICES="all" \
    NVIDIA_DRIVER_CAPABILITIES="compute,utility" \
    NVIDIA_REQUIRE_CUDA="cuda>=12.4"

LABEL com.example-bank.accelerator="cuda" \
      com.example-bank.image.tier="runtime" \
      com.nvidia.cuda.version="12.4" \
      org.imagefactory.content-hash="sha256:09880f6937cbb6ad2b464dcf5d4b1ac7970c4381dad17ff456159498bf2ed102" \
      org.imagefactory.ref="runtime/llm:cuda" \
      org.opencontainers.image.base.digest="sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" \
      org.opencontainers.image.base.name="base/debian12" \
      org.opencontainers.image.description="Python 3.11 runtime with ONNX Runtime and Hugging Face tokenizers for inference." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://gitlab.example-bank.internal/platform/imagefactory" \
      org.opencontainers.image.title="runtime/llm" \
      org.opencontainers.image.vendor="Example Bank - Data & AI Lab" \
      org.opencontainers.image.version="1.0.0"
USER 10001:10001
