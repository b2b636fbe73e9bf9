# Rendered by imagefactory from images/base/debian12/image.yaml; edit that file, not this one.
# image: base/debian12 1.0.0  content: sha256:2fef512aea7c31fd6238c44f618cfc1408dc96b6ad8d65d9411c5e95c051e937
FROM scratch
ADD rootfs.tar /

USER 0:0
SHELL ["/bin/bash", "-o", "pipefail", "-euc"]

# The configured CA bundle joins the system trust store.
COPY --chown=0:0 --chmod=0644 ca-bundle.pem /usr/local/share/ca-certificates/imagefactory-ca.crt
RUN update-ca-certificates --fresh > /dev/null

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --shell /usr/sbin/nologin --home-dir /home/app --create-home app \
 && chmod 0750 /home/app

ENV TZ="UTC" \
    LANG="C.UTF-8"
WORKDIR /home/app

LABEL com.example-bank.image.tier="base" \
      org.imagefactory.content-hash="sha256:2fef512aea7c31fd6238c44f618cfc1408dc96b6ad8d65d9411c5e95c051e937" \
      org.imagefactory.ref="base/debian12" \
      org.opencontainers.image.base.digest="" \
      org.opencontainers.image.base.name="scratch" \
      org.opencontainers.image.description="Minimal hardened Debian 12 (bookworm), bootstrapped from Debian packages." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://gitlab.example-bank.internal/platform/imagefactory" \
      org.opencontainers.image.title="base/debian12" \
      org.opencontainers.image.vendor="Example Bank - Data & AI Lab" \
      org.opencontainers.image.version="1.0.0"
USER 10001:10001
