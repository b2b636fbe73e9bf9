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

variable "ssh_password" {
  type      = string
  default   = env("IMAGEFACTORY_VM_PASSWORD")
  sensitive = true
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

source "qemu" "vm" {
  iso_url          = "https://deb.example.internal/debian-12.iso"
  iso_checksum     = "sha256:0123456789abcdef"
  vm_name          = "app-rag-api-0.3.0-d46fc05e75c1"
  output_directory = "output-qemu"
  disk_size        = "10G"
  memory           = 2048
  cpus             = 2
  accelerator      = "kvm"
  headless         = true
  format           = "qcow2"
  boot_wait        = "5s"
  boot_command     = ["<esc><wait>", "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg<enter>"]
  communicator     = "ssh"
  ssh_username     = "admin"
  ssh_password     = var.ssh_password
  ssh_timeout      = "30m"
  shutdown_command = "sudo shutdown -P now"
}

source "amazon-ebs" "vm" {
  region        = "eu-west-1"
  source_ami    = "ami-0123456789abcdef0"
  instance_type = "t3.small"
  ssh_username  = "admin"
  ami_name      = "app-rag-api-0.3.0-d46fc05e75c1"
  tags = {
    "org.imagefactory.ref"          = "app/rag-api"
    "org.imagefactory.content-hash" = "sha256:d46fc05e75c1312cc2163e52654aa5f7bc3ef0af550a9341753ffbe010743322"
  }
}

build {
  sources = ["source.docker.image", "source.qemu.vm", "source.amazon-ebs.vm"]

  # user app
  provisioner "shell" {
    only = ["qemu.vm", "amazon-ebs.vm"]
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
    inline_shebang = "/bin/sh -e"
    inline = [
      "groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid 10001 --shell /usr/sbin/nologin --home-dir /home/app --create-home app && chmod 0750 /home/app",
    ]
  }

  # upload folder (the communicator's user)
  provisioner "shell" {
    only = ["qemu.vm", "amazon-ebs.vm"]
    inline_shebang = "/bin/sh -e"
    inline = [
      "mkdir -m 0700 /tmp/imagefactory-upload",
    ]
  }

  provisioner "file" {
    only        = ["qemu.vm", "amazon-ebs.vm"]
    source      = "${path.root}/chain/runtime_llm_cpu/requirements.lock"
    destination = "/tmp/imagefactory-upload/requirements.lock"
  }

  provisioner "file" {
    only        = ["qemu.vm", "amazon-ebs.vm"]
    source      = "${path.root}/ca-bundle.pem"
    destination = "/tmp/imagefactory-upload/ca-bundle.pem"
  }

  # CA bundle
  provisioner "shell" {
    only = ["qemu.vm", "amazon-ebs.vm"]
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
    inline_shebang = "/bin/sh -e"
    inline = [
      "install -D -m 0644 /tmp/imagefactory-upload/ca-bundle.pem /run/imagefactory/ca.pem",
    ]
  }

  # packages
  provisioner "shell" {
    only = ["qemu.vm", "amazon-ebs.vm"]
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
    inline_shebang = "/bin/sh -e"
    inline = [
      "apt-get update -o Acquire::https::CaInfo=/run/imagefactory/ca.pem",
      "apt-get install -y --no-install-recommends -o Acquire::https::CaInfo=/run/imagefactory/ca.pem libcom-err2=1.47.0-2+b2 libexpat1=2.5.0-1+deb12u5 libgomp1=12.2.0-14+deb12u1 libgssapi-krb5-2=1.20.1-2+deb12u5 libk5crypto3=1.20.1-2+deb12u5 libkeyutils1=1.6.3-2 libkrb5-3=1.20.1-2+deb12u5 libkrb5support0=1.20.1-2+deb12u5 libncursesw6=6.4-4 libnsl2=1.3.0-2 libpython3-stdlib=3.11.2-1+b1 libpython3.11-minimal=3.11.2-6+deb12u9 libpython3.11-stdlib=3.11.2-6+deb12u9 libreadline8=8.2-1.3 libsqlite3-0=3.40.1-2+deb12u2 libtirpc-common=1.3.3+ds-1 libtirpc3=1.3.3+ds-1 media-types=10.0.0 python3=3.11.2-1+b1 python3-distutils=3.11.2-3 python3-lib2to3=3.11.2-3 python3-minimal=3.11.2-1+b1 python3-pip-whl=23.0.1+dfsg-1 python3-setuptools-whl=66.1.1-1+deb12u2 python3-venv=3.11.2-1+b1 python3.11=3.11.2-6+deb12u9 python3.11-minimal=3.11.2-6+deb12u9 python3.11-venv=3.11.2-6+deb12u9 readline-common=8.2-1.3",
      "apt-get clean",
      "rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/log/apt/* /var/log/dpkg.log",
    ]
  }

  # pip
  provisioner "shell" {
    only = ["qemu.vm", "amazon-ebs.vm"]
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
    inline_shebang = "/bin/sh -e"
    inline = [
      "export PIP_CERT=/run/imagefactory/ca.pem && { test -x /opt/venv/bin/python || python3 -m venv /opt/venv; } && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile --require-hashes --no-deps -r /tmp/imagefactory-upload/requirements.lock",
    ]
  }

  # remove CA bundle
  provisioner "shell" {
    only = ["qemu.vm", "amazon-ebs.vm"]
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
    inline_shebang = "/bin/sh -e"
    inline = [
      "rm -f /run/imagefactory/ca.pem",
    ]
  }

  # remove the upload folder
  provisioner "shell" {
    only = ["qemu.vm", "amazon-ebs.vm"]
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
    inline_shebang = "/bin/sh -e"
    inline = [
      "rm -rf /tmp/imagefactory-upload",
    ]
  }

  # Ansible of runtime/llm:cpu, on the VM sources
  provisioner "ansible" {
    only            = ["qemu.vm", "amazon-ebs.vm"]
    playbook_file   = "${path.root}/${var.project_root}/ansible/runtime.yml"
    extra_arguments = ["--become"]
  }

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
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
    inline_shebang = "/bin/sh -e"
    inline = [
      "install -D -m 0644 /tmp/imagefactory-upload/ca-bundle.pem /run/imagefactory/ca.pem",
    ]
  }

  # pip
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
    inline_shebang = "/bin/sh -e"
    inline = [
      "export PIP_CERT=/run/imagefactory/ca.pem && { test -x /opt/venv/bin/python || python3 -m venv /opt/venv; } && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile --require-hashes --no-deps -r /tmp/imagefactory-upload/requirements.lock",
    ]
  }

  # remove CA bundle
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
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
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
    inline_shebang = "/bin/sh -e"
    inline = [
      "mkdir -p /opt/rag-api/rag_api && cp -R --preserve=mode /tmp/imagefactory-upload/files/0/rag_api/. /opt/rag-api/rag_api/",
      "chown -R root:root /opt/rag-api/rag_api",
      "find /opt/rag-api/rag_api -type f -exec chmod 0644 {} + && find /opt/rag-api/rag_api -type d -exec chmod 0755 {} +",
    ]
  }

  # remove the upload folder
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh -c '{{ .Path }}'"
    override = {
      image = {
        execute_command = "chmod +x {{ .Path }}; {{ .Vars }} {{ .Path }}"
      }
    }
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
