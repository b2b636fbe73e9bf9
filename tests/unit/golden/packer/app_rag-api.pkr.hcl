# Rendered by imagefactory from images/app/rag-api/image.yaml; edit that file, not this one.
# image: app/rag-api 0.3.0  content: sha256:d46fc05e75c1312cc2163e52654aa5f7bc3ef0af550a9341753ffbe010743322

variable "pull" {
  type        = bool
  default     = false
  description = "Pull the parent image first (needs 'docker login' to the build registry); by default it must be local."
}

variable "project_root" {
  type        = string
  default     = "../../.."
  description = "The catalog's root, relative to this file: playbooks are found there."
}

source "docker" "image" {
  image       = "127.0.0.1:5000/bank-ai-lab/dev/runtime/llm@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
  pull        = var.pull
  commit      = true
  run_command = ["-d", "-i", "-t", "--user=0:0", "--network=host", "--entrypoint=/bin/sh", "--", "{{.Image}}"]
  changes = [
    "ENV TZ=\"UTC\"",
    "ENV LANG=\"C.UTF-8\"",
    "ENV PYTHONPATH=\"/opt/rag-api\"",
    "ENV RAG_API_PORT=\"8080\"",
    "WORKDIR /opt/rag-api",
    "EXPOSE 8080",
    "ENTRYPOINT [\"python\", \"-m\", \"uvicorn\", \"rag_api.main:app\", \"--host\", \"0.0.0.0\", \"--port\", \"8080\"]",
    "LABEL com.example-bank.image.tier=\"app\"",
    "LABEL org.imagefactory.content-hash=\"sha256:d46fc05e75c1312cc2163e52654aa5f7bc3ef0af550a9341753ffbe010743322\"",
    "LABEL org.imagefactory.ref=\"app/rag-api\"",
    "LABEL org.opencontainers.image.base.digest=\"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"",
    "LABEL org.opencontainers.image.base.name=\"runtime/llm\"",
    "LABEL org.opencontainers.image.description=\"Retrieval API over the lab's policy documents, with a health endpoint.\"",
    "LABEL org.opencontainers.image.licenses=\"Apache-2.0\"",
    "LABEL org.opencontainers.image.source=\"https://gitlab.example-bank.internal/platform/imagefactory\"",
    "LABEL org.opencontainers.image.title=\"app/rag-api\"",
    "LABEL org.opencontainers.image.vendor=\"Example Bank - Data & AI Lab\"",
    "LABEL org.opencontainers.image.version=\"0.3.0\"",
    "USER 10001:10001",
  ]
}

build {
  sources = ["source.docker.image"]

  # upload folder (the communicator's user)
  provisioner "shell" {
    inline_shebang = "/bin/sh -e"
    inline = [
      "mkdir -m 0700 /tmp/imagefactory-upload",
      "mkdir -p /tmp/imagefactory-upload/files/0/rag_api",
    ]
  }

  provisioner "file" {
    source      = "${path.root}/requirements.lock"
    destination = "/tmp/imagefactory-upload/requirements.lock"
  }

  provisioner "file" {
    source      = "${path.root}/ca-bundle.pem"
    destination = "/tmp/imagefactory-upload/ca-bundle.pem"
  }

  # CA bundle
  provisioner "shell" {
    inline_shebang = "/bin/sh -e"
    inline = [
      "install -D -m 0644 /tmp/imagefactory-upload/ca-bundle.pem /run/imagefactory/ca.pem",
    ]
  }

  # pip
  provisioner "shell" {
    inline_shebang = "/bin/sh -e"
    inline = [
      "export PIP_CERT=/run/imagefactory/ca.pem && { test -x /opt/venv/bin/python || python3 -m venv /opt/venv; } && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile --require-hashes --no-deps -r /tmp/imagefactory-upload/requirements.lock",
    ]
  }

  # remove CA bundle
  provisioner "shell" {
    inline_shebang = "/bin/sh -e"
    inline = [
      "rm -f /run/imagefactory/ca.pem",
    ]
  }

  provisioner "file" {
    source      = "${path.root}/files/0/rag_api/"
    destination = "/tmp/imagefactory-upload/files/0/rag_api"
  }

  # /opt/rag-api/rag_api: into place, owner and mode
  provisioner "shell" {
    inline_shebang = "/bin/sh -e"
    inline = [
      "mkdir -p /opt/rag-api/rag_api && cp -R --preserve=mode /tmp/imagefactory-upload/files/0/rag_api/. /opt/rag-api/rag_api/",
      "chown -R root:root /opt/rag-api/rag_api",
      "find /opt/rag-api/rag_api -type f -exec chmod 0644 {} + && find /opt/rag-api/rag_api -type d -exec chmod 0755 {} +",
    ]
  }

  # remove the upload folder
  provisioner "shell" {
    inline_shebang = "/bin/sh -e"
    inline = [
      "rm -rf /tmp/imagefactory-upload",
    ]
  }

  post-processor "docker-tag" {
    only       = ["docker.image"]
    repository = "127.0.0.1:5000/bank-ai-lab/dev/app/rag-api"
    tags       = ["content-d46fc05e75c1312cc2163e52"]
  }
}
