terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }

  # State: configure a remote backend here (for example "s3" with a lock table) before the
  # first real apply; without one, terraform keeps the state in this folder.
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      "managed-by"               = "terraform"
      "imagefactory.project"     = var.project
      "imagefactory.environment" = var.environment
    }
  }
}
