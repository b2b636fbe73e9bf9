# Rendered by imagefactory from images/runtime/llm/image.yaml; edit that file, not this one.
# Packer >= 1.7: packer init . && packer build -only=docker.image .  (Packer 1.6.6: build runtime_llm_cpu.pkr.hcl alone)

packer {
  required_version = ">= 1.7.0"
  required_plugins {
    docker = {
      version = "~> 1.1"
      source  = "github.com/hashicorp/docker"
    }
    qemu = {
      version = "~> 1.1"
      source  = "github.com/hashicorp/qemu"
    }
    amazon = {
      version = "~> 1.3"
      source  = "github.com/hashicorp/amazon"
    }
    ansible = {
      version = "~> 1.1"
      source  = "github.com/hashicorp/ansible"
    }
  }
}
